// One call each of helpers the shipped cost table prices since they were calibrated
// on their own (tests/test_priced_entries.py): none may fall back to the default.
#include "../common.h"

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, struct inner);
} by_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, struct inner);
} by_index SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

SEC("xdp")
int fib(struct xdp_md *ctx)
{
	struct bpf_fib_lookup params = {};

	params.family = 2;
	params.ifindex = ctx->ingress_ifindex;
	return bpf_fib_lookup(ctx, &params, sizeof(params), 0) == 0 ? XDP_TX : XDP_PASS;
}

SEC("xdp")
int printk(struct xdp_md *ctx)
{
	bpf_printk("seen %d", ctx->ingress_ifindex);
	return XDP_PASS;
}

SEC("xdp")
int perf_out(struct xdp_md *ctx)
{
	__u64 record[8] = {ctx->ingress_ifindex};

	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, record, sizeof(record));
	return XDP_PASS;
}

SEC("xdp")
int in_hash_of_maps(struct xdp_md *ctx)
{
	__u32 key = ctx->ingress_ifindex;

	return bpf_map_lookup_elem(&by_hash, &key) ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int in_array_of_maps(struct xdp_md *ctx)
{
	__u32 key = ctx->ingress_ifindex & 7;

	return bpf_map_lookup_elem(&by_index, &key) ? XDP_PASS : XDP_DROP;
}

SEC("tc")
int neigh(struct __sk_buff *skb)
{
	return bpf_redirect_neigh(skb->ifindex, 0, 0, 0);
}

SEC("tc")
int change_head(struct __sk_buff *skb)
{
	return bpf_skb_change_head(skb, 14, 0) ? 2 : 0;
}

SEC("tc")
int change_tail(struct __sk_buff *skb)
{
	return bpf_skb_change_tail(skb, skb->len + 8, 0) ? 2 : 0;
}

SEC("tc")
int adjust_room(struct __sk_buff *skb)
{
	return bpf_skb_adjust_room(skb, 8, BPF_ADJ_ROOM_NET, 0) ? 2 : 0;
}
