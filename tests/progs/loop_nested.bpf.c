// Nested bounded loops, two and three deep, with an inner bound depending on
// the outer index (triangular) in the 2-deep case.
#include "common.h"

volatile __u64 acc;

SEC("xdp")
int nested2(struct xdp_md *ctx)
{
	__u32 seed = ctx->rx_queue_index;
	int i, j;

#pragma clang loop unroll(disable)
	for (i = 0; i < 8; i++) {
#pragma clang loop unroll(disable)
		for (j = 0; j < 6; j++) {
			if ((seed >> ((i + j) & 31)) & 1)
				acc += i * j;
		}
	}
	return XDP_PASS;
}

SEC("xdp")
int nested2_triangular(struct xdp_md *ctx)
{
	__u32 seed = ctx->rx_queue_index;
	int i, j;

#pragma clang loop unroll(disable)
	for (i = 0; i < 10; i++) {
#pragma clang loop unroll(disable)
		for (j = 0; j < i; j++)
			acc += seed ^ j;
	}
	return XDP_PASS;
}

SEC("xdp")
int nested3(struct xdp_md *ctx)
{
	__u32 seed = ctx->rx_queue_index;
	int i, j, k;

#pragma clang loop unroll(disable)
	for (i = 0; i < 4; i++) {
#pragma clang loop unroll(disable)
		for (j = 0; j < 5; j++) {
#pragma clang loop unroll(disable)
			for (k = 0; k < 3; k++) {
				if (seed & (1u << k))
					acc += i + j + k;
				else
					acc ^= k;
			}
		}
	}
	return XDP_PASS;
}
