// bpf-to-bpf calls: static and global subprograms, a 3-deep chain, and a
// subprogram whose loop bound is its argument.
#include "common.h"

volatile __u64 acc;

static __noinline __u32 mix(__u32 x)
{
	x ^= x >> 16;
	x *= 0x45d9f3b;
	return x ^ (x >> 16);
}

static __noinline __u32 level3(__u32 x)
{
	if (x & 1)
		return mix(x) + 1;
	return x >> 1;
}

static __noinline __u32 level2(__u32 x)
{
	return level3(x + 7) * 3;
}

static __noinline __u32 level1(__u32 x)
{
	if (x > 1000)
		return 0;
	return level2(x) + level2(x ^ 5);
}

/* the loop bound comes from the caller's argument */
static __noinline __u64 sum_first(__u32 n)
{
	__u64 s = 0;
	__u32 i;

#pragma clang loop unroll(disable)
	for (i = 0; i < n && i < 64; i++)
		s += acc + i;
	return s;
}

__noinline int global_clamp(int v)
{
	if (v < 0)
		return 0;
	if (v > 255)
		return 255;
	return v;
}

SEC("xdp")
int calls_chain(struct xdp_md *ctx)
{
	__u32 q = ctx->rx_queue_index;

	acc += level1(q);
	acc += mix(q);
	return XDP_PASS;
}

SEC("xdp")
int calls_arg_loop(struct xdp_md *ctx)
{
	__u32 q = ctx->rx_queue_index;

	acc += sum_first(10);
	acc += sum_first(q & 15);
	return global_clamp(q) > 128 ? XDP_DROP : XDP_PASS;
}
