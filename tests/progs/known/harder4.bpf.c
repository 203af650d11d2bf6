// Known counts: a bound shrinking inside the body, a bounded
// retry, a byte compare, bit counting, a 16-bit checksum over the packet.
#include "known.h"

SEC("xdp")
int k_shrink_bound(struct xdp_md *ctx)
{
	PKT(2);
	__u32 n = 24;

	NOUNROLL
	for (__u32 i = 0; i < n; i++) {
		acc += i;
		if (p[1] & 1)
			n--;
	}
	return p[0];
}

SEC("xdp")
int k_retry(struct xdp_md *ctx)
{
	PKT(1);
	__u32 tries = 0;

retry:
	acc += tries;
	if (tries++ < 3 && p[0] > tries)
		goto retry;
	return XDP_PASS;
}

SEC("xdp")
int k_memcmp(struct xdp_md *ctx)
{
	static const char want[12] = "bpflint-wcet";
	PKT(12);

	NOUNROLL
	for (__u32 i = 0; i < 12; i++)
		if (p[i] != want[i])
			return XDP_DROP;
	return XDP_PASS;
}

SEC("xdp")
int k_bits(struct xdp_md *ctx)
{
	PKT(1);
	__u32 x = p[0], cnt = 0;

	NOUNROLL
	for (__u32 i = 0; i < 8; i++) {
		if (x & (1u << i)) {
			cnt++;
			acc ^= i;
		}
	}
	return cnt;
}

SEC("xdp")
int k_csum(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 sum = 0;

	NOUNROLL
	for (__u32 i = 0; i < 64; i += 2) {
		__u16 *w = data + i;

		if ((void *)(w + 1) > end)
			break;
		sum += *w;
	}
	sum = (sum & 0xffff) + (sum >> 16);
	return sum & 0xff;
}
