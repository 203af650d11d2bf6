// A loop bounded only by a loader-set knob: the kernel verifier bounds it by the
// value the loader writes (a frozen read-only map's contents are known to it), so
// bpflint can bound it only once the knob is pinned.
#include "common.h"

const volatile __u32 nwords = 8;
__u64 sum = 0;

SEC("xdp")
int open_loop(struct xdp_md *ctx)
{
	__u32 seed = ctx->rx_queue_index;
	__u32 i;

#pragma clang loop unroll(disable)
	for (i = 0; i < nwords; i++) {
		seed = seed * 1103515245 + 12345;
		sum += seed & 1;
	}
	return seed & 1 ? XDP_PASS : XDP_TX;
}
