// A loop that calls a subprogram on every iteration, and a global function
// with its own loop called twice.
#include "common.h"

volatile __u64 acc;

static __noinline __u64 step(__u64 x, __u32 i)
{
	if (x & (1ull << (i & 63)))
		return x * 31 + i;
	return x + 1;
}

__noinline __u64 global_rounds(__u64 x)
{
	int i;

#pragma clang loop unroll(disable)
	for (i = 0; i < 5; i++)
		x = (x << 1) ^ (x >> 3);
	return x;
}

SEC("raw_tp/sys_enter")
int loop_calls(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 x = ctx->args[1];
	__u32 i;

#pragma clang loop unroll(disable)
	for (i = 0; i < 10; i++)
		x = step(x, i);
	acc = global_rounds(x) + global_rounds(x + 1);
	return 0;
}
