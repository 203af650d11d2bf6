// Loops whose counter moves by a variable amount of known range each round
// (tests/test_variable_step.py). Each round moves it by at least the least step,
// so the rounds are at most the counter's range over that step; the kernel
// verifier accepts them all. `acc` is volatile so clang keeps one loop iteration
// per source iteration.
#include "common.h"

volatile __u64 acc;

/* a 64-bit counter, step 1..4 from the input: 64 rounds when q & 3 == 0 */
SEC("xdp")
int step_by_input(struct xdp_md *ctx)
{
	__u64 q = ctx->rx_queue_index;
	__u64 i;

#pragma clang loop unroll(disable)
	for (i = 0; i < 64; i += 1 + (q & 3))
		acc += i;
	return XDP_PASS;
}

/* a 32-bit counter (w-register adds), step 2..9 changing every round */
SEC("xdp")
int step_by_round(struct xdp_md *ctx)
{
	__u32 h = ctx->rx_queue_index;
	__u32 i;

#pragma clang loop unroll(disable)
	for (i = 0; i < 100; i += 2 + (h & 7)) {
		h = h * 2654435761u + i;
		acc += h;
	}
	return XDP_PASS;
}

/* a signed counter going down by 1..8 */
SEC("xdp")
int step_down(struct xdp_md *ctx)
{
	__u32 q = ctx->rx_queue_index;
	int n = 40;

#pragma clang loop unroll(disable)
	while (n > 0) {
		acc += n;
		n -= 1 + (int)(q & 7);
	}
	return XDP_PASS;
}

/* different constant steps on two paths: at least 3 a round */
SEC("xdp")
int step_by_path(struct xdp_md *ctx)
{
	__u32 q = ctx->rx_queue_index;
	__u32 i;

#pragma clang loop unroll(disable)
	for (i = 0; i < 90;) {
		if ((q >> (i & 31)) & 1) {
			acc += i;
			i += 5;
		} else {
			acc ^= i;
			i += 3;
		}
	}
	return XDP_PASS;
}
