// Tail calls through a statically initialised prog array: a -> b -> c chain,
// plus a tail call into a prog array without initial values (unknown target).
#include "common.h"

volatile __u64 acc;

int tc_stage_b(struct __sk_buff *skb);
int tc_stage_c(struct __sk_buff *skb);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} stages SEC(".maps") = {
	.values = {
		[1] = (void *)&tc_stage_b,
		[2] = (void *)&tc_stage_c,
	},
};

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 8);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} dynamic_stages SEC(".maps");

SEC("tc")
int tc_stage_c(struct __sk_buff *skb)
{
	if (skb->len > 100)
		acc += skb->len;
	return 0;
}

SEC("tc")
int tc_stage_b(struct __sk_buff *skb)
{
	acc ^= skb->mark;
	bpf_tail_call(skb, &stages, 2);
	return 1; /* reached only if the tail call fails */
}

SEC("tc")
int tc_stage_a(struct __sk_buff *skb)
{
	if (skb->mark == 0)
		return 0;
	acc += 1;
	bpf_tail_call(skb, &stages, 1);
	return 2;
}

SEC("tc")
int tc_dispatch_unknown(struct __sk_buff *skb)
{
	__u32 slot = skb->mark & 7;

	bpf_tail_call(skb, &dynamic_stages, slot);
	return 0;
}
