// Two branches: one long in instructions (arithmetic on the packet's length), one
// short that calls a dear helper. The worst path by instructions takes the first,
// the worst path by time the second (tests/test_time_path.py).
#include "../common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

SEC("xdp")
int helper_branch(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;
	__u32 h = len * 2654435761u;

	if (ctx->rx_queue_index & 1) {
		h ^= h >> 13; h *= 0x5bd1e995; h ^= h >> 15; h += len;
		h ^= h >> 11; h *= 0x27d4eb2d; h ^= h >> 17; h += len;
		h ^= h >> 7; h *= 0x165667b1; h ^= h >> 12; h += len;
		h ^= h >> 5; h *= 0x9e3779b1; h ^= h >> 16; h += len;
		h ^= h >> 9; h *= 0x85ebca6b; h ^= h >> 14; h += len;
		return 1 + (h & 1);
	}
	__u64 now = 1;
	bpf_map_update_elem(&seen, &h, &now, BPF_ANY); /* the dear helper */
	return 2;
}
