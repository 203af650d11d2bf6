// Rejected by the verifier: the trip count comes from an unclamped input, so
// the loop is unbounded (up to 2^64 rounds).
#include "common.h"

volatile __u64 acc;

SEC("raw_tp/sys_enter")
int unbounded_loop(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 n = ctx->args[1];
	__u64 i;

#pragma clang loop unroll(disable)
	for (i = 0; i < n; i++)
		acc += i;
	return 0;
}
