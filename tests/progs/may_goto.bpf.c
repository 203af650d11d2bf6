// may_goto through cond_break: a loop the verifier cannot bound by itself is
// cut by the kernel's per-program loop budget.
#include "common.h"

volatile __u64 acc;

SEC("raw_tp/sys_enter")
int may_goto_loop(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 x = ctx->args[1];

	/* Collatz steps: the trip count is unknown to the verifier */
	while (x > 1) {
		if (x & 1)
			x = 3 * x + 1;
		else
			x >>= 1;
		acc++;
		cond_break;
	}
	return 0;
}
