// Unrolled loops whose copies call helpers: a probe read whose size only its buffer
// bounds (BPF008, noted per call instruction), a tail call in each copy (BPF005
// counts call instructions), a map lookup. Blocks holding the same instructions
// share one pricing (bpflint/cost/shared_prices.py): tests/test_block_memo.py checks
// the results are the ones pricing every block gives.
#include "common.h"

volatile __u64 acc;

struct big {
	char data[100000];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct big);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 8);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} jumps SEC(".maps");

SEC("raw_tp/sys_enter")
int unrolled_reads(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 zero = 0;
	struct big *value = bpf_map_lookup_elem(&scratch, &zero);

	if (!value)
		return 0;
#pragma unroll
	for (int i = 0; i < 6; i++) {
		__u64 n = ctx->args[1];

		if (bpf_probe_read_kernel(value->data, n, (void *)ctx->args[0]))
			acc += i;
		if (bpf_map_lookup_elem(&scratch, &zero))
			acc ^= n;
	}
	return 0;
}

SEC("tc")
int unrolled_tails(struct __sk_buff *skb)
{
#pragma unroll
	for (int i = 0; i < 4; i++) {
		if (skb->mark == i)
			bpf_tail_call(skb, &jumps, 0);
		acc += skb->len;
	}
	return 0;
}
