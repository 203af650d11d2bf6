// Known counts: open-coded iterators and bpf_for_each_map_elem.
#include "known.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} table SEC(".maps");

SEC("xdp")
int k_bpf_for(struct xdp_md *ctx)
{
	int i;

	bpf_for(i, 0, 10)
		acc += i;
	return XDP_PASS;
}

SEC("xdp")
int k_bpf_for_clamp(struct xdp_md *ctx)
{
	PKT(1);
	int i, n = p[0] & 7;

	bpf_for(i, 0, n)
		acc += i;
	return XDP_PASS;
}

SEC("xdp")
int k_bpf_repeat(struct xdp_md *ctx)
{
	bpf_repeat(6)
		acc += 1;
	return XDP_PASS;
}

static long cb_sum(void *map, __u32 *key, __u32 *val, void *data)
{
	acc += *val;
	return 0;
}

static long cb_find(void *map, __u32 *key, __u32 *val, void *data)
{
	if (*val == 7)
		return 1;
	acc += *key;
	acc2 ^= *val;
	return 0;
}

SEC("xdp")
int k_foreach(struct xdp_md *ctx)
{
	return bpf_for_each_map_elem(&table, cb_sum, NULL, 0);
}

SEC("xdp")
int k_foreach_stop(struct xdp_md *ctx)
{
	return bpf_for_each_map_elem(&table, cb_find, NULL, 0);
}
