// Straight-line code: no branches, no calls; fixed cost on every input.
#include "common.h"

SEC("xdp")
int straight_xdp(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;
	__u32 q = ctx->rx_queue_index;
	__u32 h = len * 2654435761u;

	h ^= q << 7;
	h += ctx->ingress_ifindex;
	h = (h >> 13) | (h << 19);
	/* XDP_DROP (1) .. XDP_TX (3) chosen arithmetically, without a branch */
	return 1 + (h & 1) + ((h >> 1) & 1);
}
