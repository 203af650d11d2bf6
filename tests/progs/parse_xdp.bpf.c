// Packet parser with early exits: eth -> (vlan) -> ipv4/ipv6 -> tcp/udp, every
// header bounds-checked against data_end; per-protocol counters in an array map.
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} proto_count SEC(".maps");

static __always_inline void bump(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&proto_count, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int parse_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct eth_hdr *eth = data;
	void *l4;
	__u16 proto;
	__u8 ipproto;

	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	proto = eth->proto;
	l4 = eth + 1;
	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_hdr *vh = l4;

		if ((void *)(vh + 1) > end)
			return XDP_DROP;
		proto = vh->proto;
		l4 = vh + 1;
	}
	if (proto == bpf_htons(ETH_P_IP)) {
		struct ip4_hdr *ip = l4;

		if ((void *)(ip + 1) > end)
			return XDP_DROP;
		if ((ip->ver_ihl & 0x0f) != 5)
			return XDP_PASS;
		ipproto = ip->protocol;
		l4 = ip + 1;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ip6_hdr *ip6 = l4;

		if ((void *)(ip6 + 1) > end)
			return XDP_DROP;
		ipproto = ip6->nexthdr;
		l4 = ip6 + 1;
	} else {
		bump(0);
		return XDP_PASS;
	}
	if (ipproto == IPPROTO_TCP_) {
		struct tcp_hdr *tcp = l4;

		if ((void *)(tcp + 1) > end)
			return XDP_DROP;
		bump(1);
		if (tcp->dest == bpf_htons(22))
			return XDP_PASS;
		if ((tcp->flags & 0x02) && !(tcp->flags & 0x10))
			bump(2); /* SYN without ACK */
	} else if (ipproto == IPPROTO_UDP_) {
		struct udp_hdr *udp = l4;

		if ((void *)(udp + 1) > end)
			return XDP_DROP;
		bump(3);
		if (udp->dest == bpf_htons(53))
			bump(4);
	} else {
		bump(5);
	}
	return XDP_PASS;
}
