// Equality exits (analysis/equality_exits.py): a counter from 0 to != n is bounded by
// n's range; one that may start past n (and wraps around 2^32 to reach it) is not.
#include "common.h"

__u64 sink;

SEC("xdp")
int eq_from_zero(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 acc = 0;

	if (data + 2 > data_end)
		return XDP_PASS;
	__u32 n = *(__u8 *)data & 63;
	for (__u32 i = 0; i != n; i++)
		acc += i ^ *(__u8 *)(data + 1);
	sink = acc;
	return XDP_PASS;
}

SEC("xdp")
int eq_from_anywhere(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 acc = 0;

	if (data + 2 > data_end)
		return XDP_PASS;
	__u32 n = *(__u8 *)data & 63;
	__u32 i = *(__u8 *)(data + 1);
	while (i != n) {
		acc += i;
		i++;
	}
	sink = acc;
	return XDP_PASS;
}
