// A loop only cond_break ends, counting its rounds: on a timed may_goto kernel
// (Linux >= 6.15 with the JIT) it runs until 250 ms of its frame have passed, far
// more rounds than the count model's BPF_MAX_LOOPS (8M) per frame. Kept out of the
// corpus (tests/cases.py): no input ends it before the may_goto budget does, which
// the reference interpreter would run 8M rounds for.
#include "../common.h"

SEC("xdp")
int may_goto_spin(struct xdp_md *ctx)
{
	__u32 rounds = 0;

	while (1) {
		rounds++;
		cond_break;
	}
	return rounds;
}

/* cond_break in a loop with its own bound: the counter bounds it, not may_goto */
SEC("xdp")
int may_goto_counted(struct xdp_md *ctx)
{
	__u64 i = 0, sum = ctx->ingress_ifindex;

	while (i < 100) {
		sum = sum * 3 + i;
		i++;
		cond_break;
	}
	return sum;
}

/* may_goto's budget lives in each frame: every call of the subprogram starts with a
 * full one (another 250 ms on a timed kernel) */
static __attribute__((noinline)) __u32 spin_sub(__u32 seed)
{
	__u32 rounds = seed;

	while (1) {
		rounds++;
		cond_break;
	}
	return rounds;
}

SEC("xdp")
int may_goto_in_subprog(struct xdp_md *ctx)
{
	__u32 i, sum = 0;

	for (i = 0; i < 4; i++)
		sum += spin_sub(i);
	return sum;
}
