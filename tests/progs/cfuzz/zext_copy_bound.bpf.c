// Found by the C-level fuzzer (tests/cgen_gen.py seed 40221, minimised): n = min(x,
// 15) of a 64-bit x truncated to __u32. clang tests zext32(x) > 15 on a shifted copy
// (r5 = r3; r5 <<= 32; r5 >>= 32) and passes x itself on, truncating it again where
// the loop compares: only the low half of x was checked. bpflint linked the copy to x
// for a u32 x only and reported the loop unbounded; a zero-extended copy of a wider
// value is now linked as such, its check bounding x's low half.
#include "common.h"

struct acc_ctx {
	__u64 acc;
	__u64 n;
};

__u64 sink;

static __noinline int squares(struct acc_ctx *c)
{
	if ((c->n & 7) == 3) {
		c->acc ^= c->n ^ 16;
		__u32 n = c->acc;
		if (n > 15)
			n = 15;
		__u32 i = 0;
		do {
			c->acc *= c->acc;
			i++;
		} while (i < n);
	}
	return c->acc & 0xff;
}

SEC("xdp")
int zext_copy_bound(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct acc_ctx c = {};

	if (data + 16 > data_end)
		return XDP_PASS;
	c.acc = *(__u64 *)data;
	c.n = *(__u64 *)(data + 8);
	sink = squares(&c);
	return XDP_PASS;
}
