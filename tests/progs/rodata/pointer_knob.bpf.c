// A pointer-typed loader knob, as klockstat's targ_lock: a loader may store any
// address in it (or leave it NULL: trace every lock), so neither side of the filter
// may be assumed.
#include "common.h"

void *const volatile targ_lock = NULL;
volatile __u64 acc;

SEC("xdp")
int pointer_knob(struct xdp_md *ctx)
{
	void *lock = (void *)(long)ctx->rx_queue_index;
	int i;

	if (targ_lock && targ_lock != lock)
		return XDP_PASS; /* not the lock asked for */
#pragma clang loop unroll(disable)
	for (i = 0; i < 8; i++)
		acc = acc * 3 + i;
	return XDP_DROP;
}
