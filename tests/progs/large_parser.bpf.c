// A large program (a few thousand instructions): 200 fully unrolled, bounds-
// checked field-parsing steps over a fixed-layout record area.
#include "common.h"

#define STEPS 200

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} field_stats SEC(".maps");

SEC("xdp")
int large_parser(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *p = data;
	__u64 seen = 0, sum = 0;
	__u32 key;
	__u64 *cnt;
	int i;

#pragma unroll
	for (i = 0; i < STEPS; i++) {
		__u8 type, val;

		if ((void *)(p + 2 * i + 2) > end)
			return XDP_PASS; /* record area ends here */
		type = p[2 * i];
		val = p[2 * i + 1];
		if (type == 0xff)
			return XDP_DROP; /* malformed */
		if (type & 0x80)
			seen |= 1ull << (type & 63);
		else
			sum += (__u64)val * (i + 1);
	}
	key = (sum ^ seen) & 15;
	cnt = bpf_map_lookup_elem(&field_stats, &key);
	if (cnt)
		*cnt += 1;
	return XDP_PASS;
}
