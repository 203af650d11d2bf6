// Known counts: bpf_loop with constant and clamped counts, callbacks of
// different path lengths, callbacks that stop the loop.
#include "known.h"

struct loop_ctx {
	__u32 key;
	__u32 sum;
};

static int cb_simple(__u32 idx, void *data)
{
	acc += idx;
	return 0;
}

static int cb_paths(__u32 idx, struct loop_ctx *c)
{
	if (c->key & 1) {
		acc += idx;
		acc2 ^= idx;
		acc += 3;
		acc2 += 4;
	} else {
		acc2 += 1;
	}
	return 0;
}

static int cb_stop(__u32 idx, struct loop_ctx *c)
{
	acc += idx;
	if (idx == c->key)
		return 1;
	return 0;
}

static int cb_parity(__u32 idx, void *data)
{
	if (idx & 1) {
		acc += idx;
		acc2 ^= idx;
		acc += 3;
		acc2 += 4;
	} else {
		acc2 += 1;
	}
	return 0;
}

SEC("xdp")
int k_bpf_loop_const(struct xdp_md *ctx)
{
	bpf_loop(20, cb_simple, NULL, 0);
	return XDP_PASS;
}

SEC("xdp")
int k_bpf_loop_clamp(struct xdp_md *ctx)
{
	PKT(1);
	bpf_loop(p[0] & 15, cb_simple, NULL, 0);
	return XDP_PASS;
}

SEC("xdp")
int k_bpf_loop_paths(struct xdp_md *ctx)
{
	PKT(1);
	struct loop_ctx c = { .key = p[0], .sum = 0 };

	bpf_loop(16, cb_paths, &c, 0);
	return XDP_PASS;
}

SEC("xdp")
int k_bpf_loop_stop(struct xdp_md *ctx)
{
	PKT(1);
	struct loop_ctx c = { .key = p[0], .sum = 0 };

	return bpf_loop(32, cb_stop, &c, 0);
}

SEC("xdp")
int k_bpf_loop_parity(struct xdp_md *ctx)
{
	bpf_loop(16, cb_parity, NULL, 0);
	return XDP_PASS;
}

SEC("xdp")
int k_bpf_loop_parity200(struct xdp_md *ctx)
{
	bpf_loop(200, cb_parity, NULL, 0);
	return XDP_PASS;
}

static int cb_stop5(__u32 idx, void *data)
{
	acc += idx;
	return idx == 5;
}

SEC("xdp")
int k_bpf_loop_stop5(struct xdp_md *ctx)
{
	return bpf_loop(20, cb_stop5, NULL, 0);
}
