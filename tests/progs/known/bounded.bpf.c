// Known counts: loops bounded by packet bytes, packet length or map values.
#include "known.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cfg SEC(".maps");

SEC("xdp")
int k_mask_bound(struct xdp_md *ctx)
{
	PKT(1);
	__u32 n = p[0] & 31;

	NOUNROLL
	for (__u32 i = 0; i < n; i++)
		acc += i;
	return XDP_PASS;
}

SEC("xdp")
int k_min_bound(struct xdp_md *ctx)
{
	PKT(1);
	__u32 n = p[0];

	if (n > 40)
		n = 40;
	NOUNROLL
	for (__u32 i = 0; i < n; i++)
		acc += i;
	return XDP_PASS;
}

SEC("xdp")
int k_map_mask(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u32 *v = bpf_map_lookup_elem(&cfg, &key);

	if (!v)
		return XDP_ABORTED;
	__u32 n = *v & 63;
	NOUNROLL
	for (__u32 i = 0; i < n; i++)
		acc += i;
	return XDP_PASS;
}

SEC("xdp")
int k_map_min_step2(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u32 *v = bpf_map_lookup_elem(&cfg, &key);

	if (!v)
		return XDP_ABORTED;
	__u32 n = *v;
	if (n > 25)
		n = 25;
	NOUNROLL
	for (__u32 i = 0; i < n; i += 2)
		acc += i;
	return XDP_PASS;
}

SEC("xdp")
int k_len_bound(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u64 n = end - data;

	if (n > 48)
		n = 48;
	NOUNROLL
	for (__u64 i = 0; i < n; i++)
		acc += i;
	return XDP_PASS;
}

SEC("xdp")
int k_data_start(struct xdp_md *ctx)
{
	PKT(1);

	NOUNROLL
	for (__u32 i = p[0] & 15; i < 16; i++)
		acc += i;
	return XDP_PASS;
}
