// Known counts: nonlinear exits, global subprograms called with narrow arguments,
// iterators and callbacks whose cost depends on the round.
#include "known.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} lim SEC(".maps");

SEC("xdp")
int k_square_exit(struct xdp_md *ctx)
{
	PKT(1);
	__u32 n = p[0], i;

	NOUNROLL
	for (i = 0; i < 100; i++) {
		if (i * i > n)
			break;
		acc += i;
	}
	return i;
}

SEC("xdp")
int k_doubling(struct xdp_md *ctx)
{
	PKT(1);
	__u32 n = p[0], i, k = 0;

	NOUNROLL
	for (i = 1; i < n; i *= 2)
		k++;
	return k;
}

__noinline int global_loop(__u32 n)
{
	int s = 0;

	n &= 15;
	NOUNROLL
	for (__u32 i = 0; i < n; i++)
		s += i;
	return s;
}

SEC("xdp")
int k_global_narrow(struct xdp_md *ctx)
{
	PKT(1);

	return global_loop(p[0] & 3);
}

static __noinline int static_loop(__u32 n)
{
	int s = 0;

	NOUNROLL
	for (__u32 i = 0; i < n; i++)
		s += i;
	return s;
}

SEC("xdp")
int k_static_two_sites(struct xdp_md *ctx)
{
	PKT(1);

	return static_loop(p[0] & 3) + static_loop(10);
}

static int cb_mod4(__u32 idx, void *data)
{
	switch (idx & 3) {
	case 0:
		acc += 1;
		break;
	case 1:
		acc += 2;
		acc2 += 3;
		acc ^= 4;
		acc2 ^= 5;
		break;
	default:
		acc2 += idx;
	}
	return 0;
}

SEC("xdp")
int k_bpf_loop_mod4(struct xdp_md *ctx)
{
	bpf_loop(12, cb_mod4, NULL, 0);
	return XDP_PASS;
}

struct stop_ctx {
	__u32 n;
};

static int cb_until(__u32 idx, struct stop_ctx *c)
{
	acc += idx;
	return idx + 1 >= c->n;
}

SEC("xdp")
int k_bpf_loop_map(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u32 *v = bpf_map_lookup_elem(&lim, &key);
	struct stop_ctx c = { .n = 0 };

	if (!v)
		return XDP_ABORTED;
	c.n = *v & 31;
	return bpf_loop(c.n, cb_until, &c, 0);
}

SEC("xdp")
int k_iter_first(struct xdp_md *ctx)
{
	int i;

	bpf_for(i, 0, 12) {
		if (i < 2) {
			acc += i;
			acc2 ^= i;
			acc += 3;
		}
		acc2 += 1;
	}
	return XDP_PASS;
}

SEC("xdp")
int k_data_tri(struct xdp_md *ctx)
{
	PKT(8);

	NOUNROLL
	for (__u32 i = 0; i < 8; i++) {
		__u32 m = p[i] & 7;

		NOUNROLL
		for (__u32 j = 0; j < m; j++)
			acc += j;
	}
	return XDP_PASS;
}

SEC("xdp")
int k_two_phase(struct xdp_md *ctx)
{
	PKT(1);
	__u32 n = p[0] & 15, i;

	NOUNROLL
	for (i = 0; i < n; i++)
		acc += i;
	NOUNROLL
	for (; i < 20; i++)
		acc2 ^= i;
	return XDP_PASS;
}
