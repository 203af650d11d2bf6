// Known counts: nested loops, rectangular and triangular.
#include "known.h"

SEC("xdp")
int k_rect(struct xdp_md *ctx)
{
	NOUNROLL
	for (__u32 i = 0; i < 8; i++) {
		NOUNROLL
		for (__u32 j = 0; j < 6; j++)
			acc += i ^ j;
	}
	return XDP_PASS;
}

SEC("xdp")
int k_tri(struct xdp_md *ctx)
{
	NOUNROLL
	for (__u32 i = 0; i < 12; i++) {
		NOUNROLL
		for (__u32 j = 0; j < i; j++)
			acc += j;
	}
	return XDP_PASS;
}

SEC("xdp")
int k_tri_le(struct xdp_md *ctx)
{
	NOUNROLL
	for (__u32 i = 0; i < 10; i++) {
		NOUNROLL
		for (__u32 j = 0; j <= i; j++)
			acc += j;
	}
	return XDP_PASS;
}

SEC("xdp")
int k_tri_down(struct xdp_md *ctx)
{
	NOUNROLL
	for (__u32 i = 0; i < 10; i++) {
		NOUNROLL
		for (__u32 j = i; j < 10; j++)
			acc += j;
	}
	return XDP_PASS;
}

SEC("xdp")
int k_nest3(struct xdp_md *ctx)
{
	NOUNROLL
	for (__u32 i = 0; i < 4; i++) {
		NOUNROLL
		for (__u32 j = 0; j < 3; j++) {
			NOUNROLL
			for (__u32 k = 0; k < 2; k++)
				acc += i + j + k;
		}
	}
	return XDP_PASS;
}

SEC("xdp")
int k_tri_data(struct xdp_md *ctx)
{
	PKT(1);
	__u32 n = p[0] & 15;

	NOUNROLL
	for (__u32 i = 0; i < n; i++) {
		NOUNROLL
		for (__u32 j = 0; j < i; j++)
			acc += j;
	}
	return XDP_PASS;
}
