// bpf_loop: constant and clamped nr_loops, and a callback that stops early.
#include "common.h"

struct loop_ctx {
	__u64 sum;
	__u32 limit;
};

static int add_cb(__u32 index, void *data)
{
	struct loop_ctx *c = data;

	c->sum += index;
	return 0;
}

static int stop_cb(__u32 index, void *data)
{
	struct loop_ctx *c = data;

	if (index >= c->limit)
		return 1; /* stop the loop */
	c->sum += index * 2;
	return 0;
}

__u64 result;

SEC("xdp")
int bpf_loop_const(struct xdp_md *ctx)
{
	struct loop_ctx c = { .sum = 0, .limit = 0 };

	bpf_loop(32, add_cb, &c, 0);
	result = c.sum;
	return XDP_PASS;
}

SEC("xdp")
int bpf_loop_clamped(struct xdp_md *ctx)
{
	struct loop_ctx c = { .sum = 0, .limit = 0 };
	__u32 n = ctx->rx_queue_index;

	if (n > 100)
		n = 100;
	bpf_loop(n, add_cb, &c, 0);
	result = c.sum;
	return XDP_PASS;
}

SEC("xdp")
int bpf_loop_early(struct xdp_md *ctx)
{
	struct loop_ctx c = { .sum = 0, .limit = ctx->rx_queue_index };

	bpf_loop(64, stop_cb, &c, 0);
	result = c.sum;
	return XDP_PASS;
}
