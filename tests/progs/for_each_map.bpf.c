// bpf_for_each_map_elem over an array and a hash map.
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} arr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, __u64);
} tbl SEC(".maps");

struct cb_ctx {
	__u64 total;
	__u64 threshold;
};

static __u64 sum_cb(void *map, __u32 *key, __u64 *val, struct cb_ctx *c)
{
	c->total += *val;
	return 0;
}

static __u64 find_cb(void *map, __u32 *key, __u64 *val, struct cb_ctx *c)
{
	if (*val > c->threshold)
		return 1; /* stop iterating */
	c->total++;
	return 0;
}

__u64 out;

SEC("tc")
int each_array(struct __sk_buff *skb)
{
	struct cb_ctx c = { .total = 0, .threshold = 0 };

	bpf_for_each_map_elem(&arr, sum_cb, &c, 0);
	out = c.total;
	return 0;
}

SEC("tc")
int each_hash(struct __sk_buff *skb)
{
	struct cb_ctx c = { .total = 0, .threshold = skb->mark };

	bpf_for_each_map_elem(&tbl, find_cb, &c, 0);
	out = c.total;
	return 0;
}
