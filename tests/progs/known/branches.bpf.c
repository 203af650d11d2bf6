// Known counts: straight-line code, diamonds, nested ifs, switch, early returns.
#include "known.h"

SEC("xdp")
int k_straight(struct xdp_md *ctx)
{
	acc += ctx->ingress_ifindex;
	acc ^= 0x1234;
	acc2 = acc * 3;
	acc += acc2 >> 2;
	return XDP_PASS;
}

SEC("xdp")
int k_diamond(struct xdp_md *ctx)
{
	PKT(1);
	if (p[0] & 1) {
		acc += 1;
		acc2 += 2;
		acc ^= 3;
		acc2 ^= 4;
	} else {
		acc += 5;
	}
	return XDP_PASS;
}

SEC("xdp")
int k_correlated(struct xdp_md *ctx)
{
	PKT(1);
	__u8 b = p[0];

	if (b > 100) {
		acc += 1;
		acc2 += 2;
		acc ^= 3;
		acc2 ^= 4;
	} else {
		acc += 5;
	}
	acc2 += b;
	if (b > 100) {
		acc += 6;
	} else {
		acc += 7;
		acc2 += 8;
		acc ^= 9;
		acc2 ^= 10;
	}
	return XDP_PASS;
}

SEC("xdp")
int k_nested_if(struct xdp_md *ctx)
{
	PKT(1);
	__u8 b = p[0];

	if (b & 1) {
		if (b & 2) {
			acc += 1;
			acc2 += 2;
			acc ^= 3;
		} else {
			acc += 4;
		}
	} else {
		if (b & 4) {
			acc += 5;
			acc2 += 6;
		} else {
			acc2 ^= 7;
		}
		acc ^= 8;
	}
	return XDP_PASS;
}

SEC("xdp")
int k_switch(struct xdp_md *ctx)
{
	PKT(1);
	switch (p[0]) {
	case 0:
		acc += 1;
		break;
	case 3:
		acc += 2;
		acc2 += 3;
		break;
	case 7:
		acc += 4;
		acc2 += 5;
		acc ^= 6;
		break;
	case 20:
		acc2 ^= 7;
		/* fall through */
	case 21:
		acc += 8;
		acc2 += 9;
		acc ^= 10;
		acc2 ^= 11;
		break;
	default:
		return XDP_DROP;
	}
	return XDP_PASS;
}

SEC("xdp")
int k_early_return(struct xdp_md *ctx)
{
	PKT(2);
	if (p[0] == 0)
		return XDP_DROP;
	acc += p[0];
	acc2 += p[1];
	if (p[1] < 10)
		return XDP_TX;
	acc ^= 1;
	acc2 ^= 2;
	acc += 3;
	return XDP_PASS;
}

SEC("xdp")
int k_else_if_chain(struct xdp_md *ctx)
{
	PKT(1);
	__u8 b = p[0];

	if (b < 10) {
		acc += 1;
	} else if (b < 50) {
		acc += 2;
		acc2 += 3;
	} else if (b < 200) {
		acc += 4;
		acc2 += 5;
		acc ^= 6;
	} else {
		acc2 ^= 7;
	}
	return XDP_PASS;
}
