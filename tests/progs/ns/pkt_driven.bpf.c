// Validation programs for bpflint's nanosecond estimates: the amount of work is
// taken from the first packet byte (clamped), so a hand-built packet selects the
// best case (byte 0) or the worst case (byte 0xff) and the worst case is slow
// enough for BPF_PROG_TEST_RUN to time well above its noise.
#include "common.h"

#define MAX_ROUNDS 128

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} ns_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} ns_array SEC(".maps");

__u64 ns_out;

static __always_inline __u32 rounds(void *data, void *end, __u32 cap)
{
	__u8 *pkt = data;

	if ((void *)(pkt + 1) > end)
		return 0;
	return pkt[0] < cap ? pkt[0] : cap;
}

/* a data-dependent loop of register arithmetic */
SEC("xdp")
int ns_alu_loop(struct xdp_md *ctx)
{
	__u32 n = rounds((void *)(long)ctx->data, (void *)(long)ctx->data_end, MAX_ROUNDS);
	__u64 h = 0x9e3779b97f4a7c15ULL;
	__u32 i;

#pragma clang loop unroll(disable)
	for (i = 0; i < n; i++) {
		h ^= h >> 29;
		h *= 0xbf58476d1ce4e5b9ULL;
		h += i;
	}
	ns_out = h;
	return XDP_PASS;
}

static int mix_cb(__u32 index, void *data)
{
	__u64 *h = data;

	*h = (*h ^ index) * 31;
	return 0;
}

/* bpf_loop with the iteration count from the packet */
SEC("xdp")
int ns_bpf_loop(struct xdp_md *ctx)
{
	__u32 n = rounds((void *)(long)ctx->data, (void *)(long)ctx->data_end, MAX_ROUNDS);
	__u64 h = 7;

	bpf_loop(n, mix_cb, &h, 0);
	ns_out = h;
	return XDP_PASS;
}

static __noinline __u64 step(__u64 h, __u32 i)
{
	if (i & 1)
		return (h << 3) ^ i;
	return h + i * 5;
}

/* a bpf-to-bpf call per iteration */
SEC("xdp")
int ns_call_loop(struct xdp_md *ctx)
{
	__u32 n = rounds((void *)(long)ctx->data, (void *)(long)ctx->data_end, 64);
	__u64 h = 1;
	__u32 i;

#pragma clang loop unroll(disable)
	for (i = 0; i < n; i++)
		h = step(h, i);
	ns_out = h;
	return XDP_PASS;
}

/* hash-map update and lookup per iteration */
SEC("xdp")
int ns_hash_ops(struct xdp_md *ctx)
{
	__u32 n = rounds((void *)(long)ctx->data, (void *)(long)ctx->data_end, 32);
	__u32 i;

#pragma clang loop unroll(disable)
	for (i = 0; i < n; i++) {
		__u32 key = i;
		__u64 one = 1, *v;

		bpf_map_update_elem(&ns_hash, &key, &one, BPF_ANY);
		v = bpf_map_lookup_elem(&ns_hash, &key);
		if (v)
			ns_out += *v;
	}
	return XDP_PASS;
}

/* array lookups and atomic adds per iteration (tc) */
SEC("tc")
int ns_array_ops(struct __sk_buff *skb)
{
	__u32 n = rounds((void *)(long)skb->data, (void *)(long)skb->data_end, 64);
	__u32 i;

#pragma clang loop unroll(disable)
	for (i = 0; i < n; i++) {
		__u32 key = i;
		__u64 *v = bpf_map_lookup_elem(&ns_array, &key);

		if (v)
			__sync_fetch_and_add(v, i);
	}
	return 0;
}

struct each_ctx {
	__u64 sum;
	__u32 stop;
};

static __u64 sum_cb(void *map, __u32 *key, __u64 *val, struct each_ctx *c)
{
	if (*key >= c->stop)
		return 1;
	c->sum += *val;
	return 0;
}

/* for_each_map_elem over a 64-entry array, stopped at the packet's count (tc) */
SEC("tc")
int ns_for_each(struct __sk_buff *skb)
{
	struct each_ctx c = { .sum = 0 };

	c.stop = rounds((void *)(long)skb->data, (void *)(long)skb->data_end, 64);
	bpf_for_each_map_elem(&ns_array, sum_cb, &c, 0);
	ns_out = c.sum;
	return 0;
}

/* sum packet bytes, the length from the packet (packet reads in a loop) */
SEC("xdp")
int ns_pkt_sum(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 n = rounds(data, end, MAX_ROUNDS);
	__u8 *p = data;
	__u64 sum = 0;
	__u32 i;

#pragma clang loop unroll(disable)
	for (i = 1; i <= n; i++) {
		if ((void *)(p + i + 1) > end)
			break;
		sum += p[i];
	}
	ns_out = sum;
	return XDP_PASS;
}
