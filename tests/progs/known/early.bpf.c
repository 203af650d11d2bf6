// Known counts: loops with data-dependent break / continue / return.
#include "known.h"

SEC("xdp")
int k_search_break(struct xdp_md *ctx)
{
	PKT(32);
	__u32 i;

	NOUNROLL
	for (i = 0; i < 32; i++) {
		if (p[i] == 0x55)
			break;
		acc += p[i];
	}
	return i;
}

SEC("xdp")
int k_continue(struct xdp_md *ctx)
{
	PKT(16);

	NOUNROLL
	for (__u32 i = 0; i < 16; i++) {
		if (p[i] & 1)
			continue;
		acc += p[i];
		acc2 ^= i;
		acc += 2;
	}
	return XDP_PASS;
}

SEC("xdp")
int k_break_at(struct xdp_md *ctx)
{
	PKT(1);
	__u8 stop = p[0];
	__u32 i;

	NOUNROLL
	for (i = 0; i < 20; i++) {
		acc += i;
		if (stop == i)
			break;
	}
	return i;
}

SEC("xdp")
int k_two_exits(struct xdp_md *ctx)
{
	PKT(24);

	NOUNROLL
	for (__u32 i = 0; i < 24; i++) {
		if (p[i] == 1)
			break;
		if (p[i] == 2)
			return XDP_TX;
		acc += i;
	}
	acc2 += 1;
	return XDP_PASS;
}

SEC("xdp")
int k_pkt_walk(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u8 *p = data;
	__u32 sum = 0;

	NOUNROLL
	for (__u32 i = 0; i < 64; i++) {
		if ((void *)(p + i + 1) > end)
			break;
		sum += p[i];
	}
	acc = sum;
	return XDP_PASS;
}
