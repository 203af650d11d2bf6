// bpf_for_each_map_elem over the inner map of a map-in-map: bounded by the inner
// template's max_entries (the kernel makes every inner map match it).
#include "../common.h"

struct inner {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, __u64);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_ARRAY);
		__uint(max_entries, 16);
		__uint(map_flags, 1U << 12);  /* BPF_F_INNER_MAP: any size */
		__type(key, __u32);
		__type(value, __u64);
	});
} any_size SEC(".maps");

static __u64 count_cb(void *map, __u32 *key, __u64 *val, __u64 *sum)
{
	*sum += *val;
	return 0;
}

SEC("tc")
int each_inner(struct __sk_buff *skb)
{
	__u32 group = skb->mark;
	__u64 sum = 0;
	void *members = bpf_map_lookup_elem(&outer, &group);

	if (members)
		bpf_for_each_map_elem(members, count_cb, &sum, 0);
	return sum & 1;
}

SEC("tc")
int each_any_size(struct __sk_buff *skb)
{
	__u32 group = skb->mark;
	__u64 sum = 0;
	void *members = bpf_map_lookup_elem(&any_size, &group);

	if (members)
		bpf_for_each_map_elem(members, count_cb, &sum, 0);
	return sum & 1;
}
