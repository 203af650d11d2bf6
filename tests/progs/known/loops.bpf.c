// Known counts: loops with constant bounds.
#include "known.h"

SEC("xdp")
int k_up16(struct xdp_md *ctx)
{
	NOUNROLL
	for (__u32 i = 0; i < 16; i++)
		acc += i;
	return XDP_PASS;
}

SEC("xdp")
int k_down20(struct xdp_md *ctx)
{
	NOUNROLL
	for (__u32 i = 20; i > 0; i--)
		acc += i;
	return XDP_PASS;
}

SEC("xdp")
int k_step2(struct xdp_md *ctx)
{
	NOUNROLL
	for (__u32 i = 0; i < 30; i += 2)
		acc += i;
	return XDP_PASS;
}

SEC("xdp")
int k_step3_le(struct xdp_md *ctx)
{
	NOUNROLL
	for (__u32 i = 1; i <= 31; i += 3)
		acc ^= i;
	return XDP_PASS;
}

SEC("xdp")
int k_signed(struct xdp_md *ctx)
{
	NOUNROLL
	for (int i = -8; i < 8; i++)
		acc += i;
	return XDP_PASS;
}

SEC("xdp")
int k_u8_wrap(struct xdp_md *ctx)
{
	NOUNROLL
	for (__u8 i = 200; i != 10; i++)
		acc += i;
	return XDP_PASS;
}

SEC("xdp")
int k_do_while(struct xdp_md *ctx)
{
	__u32 i = 0;

	NOUNROLL
	do {
		acc += i;
	} while (++i < 12);
	return XDP_PASS;
}

SEC("xdp")
int k_body_diamond(struct xdp_md *ctx)
{
	PKT(1);
	__u8 b = p[0];

	NOUNROLL
	for (__u32 i = 0; i < 16; i++) {
		if (b & (1 << (i & 7))) {
			acc += i;
			acc2 ^= i;
			acc += 3;
		} else {
			acc2 += 1;
		}
	}
	return XDP_PASS;
}

SEC("xdp")
int k_parity(struct xdp_md *ctx)
{
	NOUNROLL
	for (__u32 i = 0; i < 16; i++) {
		if (i & 1) {
			acc += i;
			acc2 ^= i;
			acc += 3;
			acc2 += 4;
		} else {
			acc2 += 1;
		}
	}
	return XDP_PASS;
}

SEC("xdp")
int k_shift_loop(struct xdp_md *ctx)
{
	PKT(1);
	__u32 x = p[0];

	NOUNROLL
	while (x) {
		acc += x;
		x >>= 1;
	}
	return XDP_PASS;
}
