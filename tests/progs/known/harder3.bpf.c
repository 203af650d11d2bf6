// Known counts: idioms from real parsers and counters (pointer walks, while (n--),
// signed bounds, nested bpf_loop, a two-stage tail-call chain, IPv4 options).
#include "known.h"

SEC("xdp")
int k_ptr_walk(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *q = data;
	__u32 sum = 0;

	NOUNROLL
	for (int i = 0; i < 48; i++) {
		if ((void *)(q + 1) > end)
			break;
		sum += *q;
		q++;
	}
	acc = sum;
	return XDP_PASS;
}

SEC("xdp")
int k_while_dec(struct xdp_md *ctx)
{
	PKT(1);
	__u32 n = p[0] & 15;

	NOUNROLL
	while (n--)
		acc += n;
	return XDP_PASS;
}

SEC("xdp")
int k_signed_bound(struct xdp_md *ctx)
{
	PKT(1);
	int n = (signed char)p[0];

	NOUNROLL
	for (int i = 0; i < n; i++)
		acc += i;
	return XDP_PASS;
}

static int cb_inner(__u32 idx, void *data)
{
	acc += idx;
	return 0;
}

static int cb_outer(__u32 idx, void *data)
{
	bpf_loop(idx & 3, cb_inner, NULL, 0);
	return 0;
}

SEC("xdp")
int k_bpf_loop_nested(struct xdp_md *ctx)
{
	bpf_loop(8, cb_outer, NULL, 0);
	return XDP_PASS;
}

int k_chain_c(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} chain SEC(".maps") = {
	.values = { [2] = (void *)&k_chain_c },
};

SEC("xdp")
int k_chain_c(struct xdp_md *ctx)
{
	PKT(1);

	NOUNROLL
	for (__u32 i = 0; i < (p[0] & 7); i++)
		acc += i;
	return XDP_PASS;
}

SEC("xdp")
int k_chain_a(struct xdp_md *ctx)
{
	PKT(1);

	if (p[0] & 0x80)
		return XDP_DROP;
	NOUNROLL
	for (__u32 i = 0; i < 4; i++)
		acc2 += i;
	bpf_tail_call(ctx, &chain, 2);
	return XDP_ABORTED;
}

SEC("xdp")
int k_ip_options(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct eth_hdr *eth = data;
	struct ip4_hdr *ip = (void *)(eth + 1);
	__u8 *opt;
	__u32 len, i;

	if ((void *)(ip + 1) > end)
		return XDP_DROP;
	if (eth->proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	len = (ip->ver_ihl & 0xf) * 4;
	if (len < 20)
		return XDP_DROP;
	opt = (__u8 *)(ip + 1);
	NOUNROLL
	for (i = 0; i < 40 && i < len - 20; i++) {
		if ((void *)(opt + i + 1) > end)
			break;
		if (opt[i] == 0) /* end of options */
			break;
		acc += opt[i];
	}
	return XDP_PASS;
}

static __noinline int tri_sub(__u32 n)
{
	int s = 0;

	NOUNROLL
	for (__u32 j = 0; j < n; j++)
		s += j;
	return s;
}

__noinline int tri_global(__u32 n)
{
	int s = 0;

	n &= 7;
	NOUNROLL
	for (__u32 j = 0; j < n; j++)
		s += j;
	return s;
}

SEC("xdp")
int k_call_tri(struct xdp_md *ctx)
{
	int s = 0;

	NOUNROLL
	for (__u32 i = 0; i < 8; i++)
		s += tri_sub(i);
	return s;
}

SEC("xdp")
int k_global_tri(struct xdp_md *ctx)
{
	int s = 0;

	NOUNROLL
	for (__u32 i = 0; i < 8; i++)
		s += tri_global(i);
	return s;
}

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __u32);
} weights SEC(".maps");

static long cb_weighted(void *map, __u32 *key, __u32 *val, void *data)
{
	__u32 n = *val & 7;

	NOUNROLL
	for (__u32 j = 0; j < n; j++)
		acc += j;
	return 0;
}

SEC("xdp")
int k_foreach_loop(struct xdp_md *ctx)
{
	bpf_for_each_map_elem(&weights, cb_weighted, NULL, 0);
	return XDP_PASS;
}
