// Found by the C-level fuzzer (tests/cgen_gen.py seed 40208, minimised): a signed
// counter counting down from a loader-set __u8 in a global subprogram. clang tests
// it on two paths: after i-- through a zero extension of the new value, and through
// r5 = r6 (shifted left by 32 just before); r5 >>= 32 of the old one. bpflint linked
// the shifted-back value only when the right shift followed the left shift on the
// same register, so the second exit said nothing of the counter, and the loop was
// reported unbounded although the kernel accepts it.
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} arr SEC(".maps");

struct acc_ctx {
	__u64 acc;
	__u64 n;
};

const volatile __u8 knob_small = 18;
__u64 sink;

static __always_inline __u64 arr_val(__u32 k)
{
	__u64 *v = bpf_map_lookup_elem(&arr, &k);

	return v ? *v : 0;
}

__noinline int down(__u64 a, struct acc_ctx *c)
{
	__u64 acc = 0;

	if (!c)
		return 0;
	switch ((c->n) & 7) {
	case 1:
		for (__s32 i = knob_small; i > 0; i--) {
			if ((i & 8) >= 5) {
				c->acc |= arr_val(2);
			} else {
				if (a == 10)
					continue;
			}
			if (c->n >= 230)
				break;
		}
		break;
	case 2:
		acc += 1;
		break;
	default:
		acc += 6;
	}
	c->n += acc;
	return acc & 0xff;
}

SEC("xdp")
int knob_down_sub(struct xdp_md *ctx)
{
	struct acc_ctx c = {};

	c.n = ctx->ingress_ifindex;
	sink = down(ctx->rx_queue_index, &c);
	return XDP_PASS;
}
