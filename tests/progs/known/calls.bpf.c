// Known counts: subprograms and helpers called in loops, a tail call.
#include "known.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __noinline __u32 mix(__u32 x)
{
	if (x & 1) {
		acc += x;
		acc2 ^= x;
		return x * 3;
	}
	return x + 1;
}

__noinline int global_step(__u32 x)
{
	acc += x;
	if (x > 4)
		acc2 += x;
	return x & 3;
}

static __noinline __u32 sub_loop(__u32 n)
{
	__u32 s = 0;

	n &= 7;
	NOUNROLL
	for (__u32 i = 0; i < n; i++)
		s += i;
	return s;
}

SEC("xdp")
int k_static_in_loop(struct xdp_md *ctx)
{
	PKT(1);
	__u32 s = p[0];

	NOUNROLL
	for (__u32 i = 0; i < 8; i++)
		s = mix(s);
	acc = s;
	return XDP_PASS;
}

SEC("xdp")
int k_global_in_loop(struct xdp_md *ctx)
{
	int s = 0;

	NOUNROLL
	for (__u32 i = 0; i < 8; i++)
		s += global_step(i);
	return s;
}

SEC("xdp")
int k_sub_loop_twice(struct xdp_md *ctx)
{
	PKT(2);

	acc = sub_loop(p[0]) + sub_loop(p[1]);
	return XDP_PASS;
}

SEC("xdp")
int k_helper_loop(struct xdp_md *ctx)
{
	NOUNROLL
	for (__u32 i = 0; i < 6; i++) {
		__u32 key = i * 2;
		__u64 *v = bpf_map_lookup_elem(&counts, &key);

		if (v) {
			*v += 1;
		} else {
			__u64 one = 1;

			bpf_map_update_elem(&counts, &key, &one, BPF_ANY);
		}
	}
	return XDP_PASS;
}

SEC("xdp")
int k_tail_target(struct xdp_md *ctx)
{
	NOUNROLL
	for (__u32 i = 0; i < 5; i++)
		acc += i;
	return XDP_PASS;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} jump SEC(".maps") = {
	.values = { [0] = (void *)&k_tail_target },
};

SEC("xdp")
int k_tail(struct xdp_md *ctx)
{
	acc += 1;
	bpf_tail_call(ctx, &jump, 0);
	return XDP_DROP;
}
