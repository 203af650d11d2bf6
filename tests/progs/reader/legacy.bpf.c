// Reader test: a legacy `maps` section (struct bpf_map_def), as old loaders and
// the PREVAIL corpus use it, and a samples/bpf-style `maps/<name>` section;
// compiled with and without BTF.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

struct bpf_map_def SEC("maps") packet_counts = {
	.type = BPF_MAP_TYPE_PERCPU_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 256,
};

struct bpf_map_def SEC("maps") flows = {
	.type = BPF_MAP_TYPE_LRU_HASH,
	.key_size = 8,
	.value_size = 16,
	.max_entries = 4096,
	.map_flags = 1,
};

struct bpf_map_def SEC("maps/stats") stats = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = 4,
	.value_size = 8,
	.max_entries = 2,
};

SEC("socket")
int count_packets(struct __sk_buff *skb)
{
	__u32 key = skb->protocol & 0xff;
	__u64 *value = bpf_map_lookup_elem(&packet_counts, &key);
	if (value)
		__sync_fetch_and_add(value, 1);
	__u64 flow = skb->hash;
	bpf_map_lookup_elem(&flows, &flow);
	return bpf_map_lookup_elem(&stats, &key) != 0;
}

char _license[] SEC("license") = "GPL";
