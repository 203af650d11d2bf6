// Found by the C-level fuzzer (tests/cgen_gen.py seed 60595, minimised): a loop
// counting down from a loader-set __u8 in a global subprogram around a loop running
// i3 < i2 + 1 times, which clang rewrites into an equality exit (i3 + 1 != i2 + 1,
// on zero-extended copies). The inner loop had no induction bound (its exit is
// an equality, not a range test), so each outer round was walked iteration by
// iteration (255 x 256 rounds): the analysis ran out of its step budget (BPF006).
// An equality exit met by a counter stepping by 1 from below every possible end now
// bounds the loop (analysis/equality_exits.py), and the outer loop's bound survives
// its per-round walk.
#include "common.h"

struct acc_ctx {
	__u64 acc;
	__u64 n;
};

const volatile __u8 knob_u8 = 27;
__u64 sink;

__noinline int sub1(__u64 a, struct acc_ctx *c)
{
	__u64 acc = 0;

	if (!c)
		return 0;
	for (__s32 i2 = knob_u8; i2 > 0; i2--) {
		if ((c->n) <= 244) {
			if ((a) == 73)
				break;
		}
		__u32 i3 = 0;
		while (i3 < i2 + 1) {
			if ((i2) > 65) {
				if ((i2) > 175) {
					acc += 1;
				}
			} else {
				acc += 1;
			}
			i3++;
		}
	}
	c->n += acc;
	return acc & 0xff;
}

SEC("xdp")
int equality_exit_nest(struct xdp_md *ctx)
{
	struct acc_ctx c = {};

	c.n = ctx->ingress_ifindex;
	sink = sub1(ctx->rx_queue_index, &c);
	return XDP_PASS;
}
