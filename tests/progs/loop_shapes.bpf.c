// Bounded loops of every shape, one program each. The bodies branch on bits of
// the input (rx_queue_index) so worst and best case differ; `acc` is volatile so
// clang keeps one loop iteration per source iteration (unrolling is disabled).
#include "common.h"

volatile __u64 acc;

#define BODY(i, seed)							\
	do {								\
		if (((seed) >> ((i) & 31)) & 1)				\
			acc += (i) * 3;					\
		else							\
			acc ^= (i);					\
	} while (0)

SEC("xdp")
int loop_lt_up(struct xdp_md *ctx)
{
	__u32 seed = ctx->rx_queue_index;
	int i;

#pragma clang loop unroll(disable)
	for (i = 0; i < 16; i++)
		BODY(i, seed);
	return XDP_PASS;
}

SEC("xdp")
int loop_le_up(struct xdp_md *ctx)
{
	__u32 seed = ctx->rx_queue_index;
	__u32 i;

#pragma clang loop unroll(disable)
	for (i = 1; i <= 20; i++)
		BODY(i, seed);
	return XDP_PASS;
}

SEC("xdp")
int loop_ne_up(struct xdp_md *ctx)
{
	__u32 seed = ctx->rx_queue_index;
	__u32 i;

#pragma clang loop unroll(disable)
	for (i = 0; i != 12; i++)
		BODY(i, seed);
	return XDP_PASS;
}

SEC("xdp")
int loop_signed_down(struct xdp_md *ctx)
{
	__u32 seed = ctx->rx_queue_index;
	int i;

#pragma clang loop unroll(disable)
	for (i = 24; i >= 0; i--)
		BODY(i, seed);
	return XDP_PASS;
}

SEC("xdp")
int loop_unsigned_down(struct xdp_md *ctx)
{
	__u32 seed = ctx->rx_queue_index;
	__u32 i;

#pragma clang loop unroll(disable)
	for (i = 30; i > 0; i--)
		BODY(i, seed);
	return XDP_PASS;
}

SEC("xdp")
int loop_step3(struct xdp_md *ctx)
{
	__u32 seed = ctx->rx_queue_index;
	int i;

#pragma clang loop unroll(disable)
	for (i = 0; i < 64; i += 3)
		BODY(i, seed);
	return XDP_PASS;
}

SEC("xdp")
int loop_signed_neg(struct xdp_md *ctx)
{
	__u32 seed = ctx->rx_queue_index;
	int i;

	/* signed range crossing zero */
#pragma clang loop unroll(disable)
	for (i = -10; i < 10; i += 2)
		BODY(i, seed);
	return XDP_PASS;
}

SEC("xdp")
int loop_do_while(struct xdp_md *ctx)
{
	__u32 seed = ctx->rx_queue_index;
	__u32 i = 0;

#pragma clang loop unroll(disable)
	do {
		BODY(i, seed);
		i += 2;
	} while (i < 18);
	return XDP_PASS;
}

SEC("xdp")
int loop_break(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *p = data;
	int i;

	/* scan at most 32 bytes for a zero byte; exits early on data */
#pragma clang loop unroll(disable)
	for (i = 0; i < 32; i++) {
		if ((void *)(p + i + 1) > end)
			break;
		if (p[i] == 0)
			break;
		acc += p[i];
	}
	return i;
}
