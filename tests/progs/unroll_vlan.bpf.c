// #pragma unroll: peel up to two stacked VLAN tags (fully unrolled by clang).
#include "common.h"

SEC("xdp")
int unroll_vlan(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct eth_hdr *eth = data;
	struct vlan_hdr *vh;
	__u16 proto;
	__u32 vid_sum = 0;
	int i;

	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	proto = eth->proto;
	vh = (void *)(eth + 1);
#pragma unroll
	for (i = 0; i < 2; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(0x88A8))
			break;
		if ((void *)(vh + 1) > end)
			return XDP_DROP;
		vid_sum += bpf_ntohs(vh->tci) & 0x0fff;
		proto = vh->proto;
		vh++;
	}
	if (vid_sum > 4000)
		return XDP_DROP;
	return proto == bpf_htons(ETH_P_IP) ? XDP_PASS : XDP_TX;
}
