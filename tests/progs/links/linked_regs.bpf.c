// Loops bounded through a copy of their bound (tests/test_linked_regs.py): the
// check is on the copy, the loop compares against the original. The kernel
// verifier links a register to its copy (reg->id) and narrows both on the check;
// so does bpflint. The *_unlinked programs change or reload the copy before the
// check: nothing bounds the loop there, and the kernel refuses them.
#include "common.h"

#define LIMIT 20

/* r2 = n; if r2 > 20: n <= 20 too */
SEC("xdp")
int loop_copy(struct xdp_md *ctx)
{
	__u64 n = ctx->rx_queue_index;
	__u64 i = 0;

	asm volatile("r2 = %[n];"
		     "if r2 > %[lim] goto +3;"
		     "if %[i] >= %[n] goto +2;"
		     "%[i] += 1;"
		     "goto -3;"
		     : [i] "+r"(i)
		     : [n] "r"(n), [lim] "i"(LIMIT)
		     : "r2");
	return i > LIMIT ? XDP_DROP : XDP_PASS;
}

/* r2 = n; r3 = r2: one link for all three */
SEC("xdp")
int loop_copy_of_copy(struct xdp_md *ctx)
{
	__u64 n = ctx->rx_queue_index;
	__u64 i = 0;

	asm volatile("r2 = %[n];"
		     "r3 = r2;"
		     "if r3 > %[lim] goto +3;"
		     "if %[i] >= %[n] goto +2;"
		     "%[i] += 1;"
		     "goto -3;"
		     : [i] "+r"(i)
		     : [n] "r"(n), [lim] "i"(LIMIT)
		     : "r2", "r3");
	return i > LIMIT ? XDP_DROP : XDP_PASS;
}

/* w2 = w1 of a u32 links as r2 = r1 */
SEC("xdp")
int loop_wcopy(struct xdp_md *ctx)
{
	__u64 i = 0;

	asm volatile("w1 = *(u32 *)(%[ctx] + 16);" /* rx_queue_index */
		     "w2 = w1;"
		     "if w2 > %[lim] goto +3;"
		     "if %[i] >= r1 goto +2;"
		     "%[i] += 1;"
		     "goto -3;"
		     : [i] "+r"(i)
		     : [ctx] "r"(ctx), [lim] "i"(LIMIT)
		     : "r1", "r2");
	return i > LIMIT ? XDP_DROP : XDP_PASS;
}

/* r2 = n + 4, 4 <= r2 <= 24: 0 <= n <= 20 (the kernel's BPF_ADD_CONST) */
SEC("xdp")
int loop_add_const(struct xdp_md *ctx)
{
	__u64 n = ctx->rx_queue_index;
	__u64 i = 0;

	asm volatile("r2 = %[n];"
		     "r2 += 4;"
		     "if r2 < 4 goto +4;"
		     "if r2 > %[lim4] goto +3;"
		     "if %[i] >= %[n] goto +2;"
		     "%[i] += 1;"
		     "goto -3;"
		     : [i] "+r"(i)
		     : [n] "r"(n), [lim4] "i"(LIMIT + 4)
		     : "r2");
	return i > LIMIT ? XDP_DROP : XDP_PASS;
}

/* the copy is spilled before the check and the loop reads the spill: the stack
 * slot shares the link */
SEC("xdp")
int loop_spilled(struct xdp_md *ctx)
{
	__u64 n = ctx->rx_queue_index;
	__u64 slot = 0;
	__u64 i = 0;

	asm volatile("r2 = %[n];"
		     "*(u64 *)(%[p] + 0) = r2;"
		     "if r2 > %[lim] goto +4;"
		     "r3 = *(u64 *)(%[p] + 0);"
		     "if %[i] >= r3 goto +2;"
		     "%[i] += 1;"
		     "goto -3;"
		     : [i] "+r"(i)
		     : [n] "r"(n), [p] "r"(&slot), [lim] "i"(LIMIT)
		     : "r2", "r3", "memory");
	return i > LIMIT ? XDP_DROP : XDP_PASS;
}

/* the copy is halved before the check: n is up to 2^32 - 1 */
SEC("xdp")
int loop_shifted_unlinked(struct xdp_md *ctx)
{
	__u64 n = ctx->rx_queue_index;
	__u64 i = 0;

	asm volatile("r2 = %[n];"
		     "r2 >>= 1;"
		     "if r2 > %[lim] goto +3;"
		     "if %[i] >= %[n] goto +2;"
		     "%[i] += 1;"
		     "goto -3;"
		     : [i] "+r"(i)
		     : [n] "r"(n), [lim] "i"(LIMIT)
		     : "r2");
	return i > LIMIT ? XDP_DROP : XDP_PASS;
}

/* the copy is reloaded before the check: the same value, no longer a copy */
SEC("xdp")
int loop_reloaded_unlinked(struct xdp_md *ctx)
{
	__u64 i = 0;

	asm volatile("w1 = *(u32 *)(%[ctx] + 16);"
		     "r2 = r1;"
		     "w2 = *(u32 *)(%[ctx] + 16);"
		     "if r2 > %[lim] goto +3;"
		     "if %[i] >= r1 goto +2;"
		     "%[i] += 1;"
		     "goto -3;"
		     : [i] "+r"(i)
		     : [ctx] "r"(ctx), [lim] "i"(LIMIT)
		     : "r1", "r2");
	return i > LIMIT ? XDP_DROP : XDP_PASS;
}

/* clang's zero extension of a copy (r1 = r2; r1 <<= 32; r1 >>= 32) of a u32: the
 * same value again, so still linked. The kernel breaks the link at the shift and
 * refuses this one; bpflint keeps it (falco's filler_helpers.h:218) */
SEC("xdp")
int loop_zext_copy(struct xdp_md *ctx)
{
	__u64 n = ctx->rx_queue_index;
	__u64 i = 0;

	asm volatile("r2 = %[n];"
		     "r2 <<= 32;"
		     "r2 >>= 32;"
		     "if r2 > %[lim] goto +3;"
		     "if %[i] >= %[n] goto +2;"
		     "%[i] += 1;"
		     "goto -3;"
		     : [i] "+r"(i)
		     : [n] "r"(n), [lim] "i"(LIMIT)
		     : "r2");
	return i > LIMIT ? XDP_DROP : XDP_PASS;
}

/* the same zero extension of a 64-bit value checks its low half only */
SEC("xdp")
int loop_zext_wide_unlinked(struct xdp_md *ctx)
{
	__u64 n = ctx->rx_queue_index | (__u64)ctx->ingress_ifindex << 32;
	__u64 i = 0;

	asm volatile("r2 = %[n];"
		     "r2 <<= 32;"
		     "r2 >>= 32;"
		     "if r2 > %[lim] goto +3;"
		     "if %[i] >= %[n] goto +2;"
		     "%[i] += 1;"
		     "goto -3;"
		     : [i] "+r"(i)
		     : [n] "r"(n), [lim] "i"(LIMIT)
		     : "r2");
	return i > LIMIT ? XDP_DROP : XDP_PASS;
}
