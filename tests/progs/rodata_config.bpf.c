// Loop bound and feature switches from read-only globals (.rodata, set before
// load), counters in .data and .bss.
#include "common.h"

const volatile __u32 max_rounds = 12;
const volatile __u8 enable_stats = 1;
__u64 rounds_run = 0;
__u64 stat_packets = 5;

SEC("xdp")
int rodata_config(struct xdp_md *ctx)
{
	__u32 seed = ctx->rx_queue_index;
	__u32 i;

#pragma clang loop unroll(disable)
	for (i = 0; i < max_rounds && i < 64; i++) {
		seed = seed * 1103515245 + 12345;
		rounds_run += seed & 1;
	}
	if (enable_stats)
		stat_packets++;
	return seed & 1 ? XDP_PASS : XDP_TX;
}
