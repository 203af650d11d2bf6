// A loop whose bound is an input clamped to 50: n = min(pkt[0], 50).
#include "common.h"

volatile __u64 acc;

SEC("xdp")
int loop_clamped(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *pkt = data;
	__u32 n, i;

	if ((void *)(pkt + 1) > end)
		return XDP_DROP;
	n = pkt[0];
	if (n > 50)
		n = 50;
#pragma clang loop unroll(disable)
	for (i = 0; i < n; i++)
		acc += i * 7;
	return XDP_PASS;
}
