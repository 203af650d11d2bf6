// Walk an IPv6 extension-header chain, at most 6 headers, to find the L4 header.
#include "common.h"

#define MAX_EXT_HDRS 6

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} l4_proto SEC(".maps");

SEC("tc")
int ipv6_ext(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct eth_hdr *eth = data;
	struct ip6_hdr *ip6;
	__u8 *cur;
	__u32 next;
	__u64 *cnt;
	int i;

	if ((void *)(eth + 1) > end || eth->proto != bpf_htons(ETH_P_IPV6))
		return 0;
	ip6 = (void *)(eth + 1);
	if ((void *)(ip6 + 1) > end)
		return 0;
	next = ip6->nexthdr;
	cur = (void *)(ip6 + 1);
#pragma clang loop unroll(disable)
	for (i = 0; i < MAX_EXT_HDRS; i++) {
		struct ip6_opt_hdr *opt = (void *)cur;

		if (next != NEXTHDR_HOP && next != NEXTHDR_ROUTING &&
		    next != NEXTHDR_DEST && next != NEXTHDR_FRAGMENT)
			break;
		if ((void *)(opt + 1) > end)
			return 0;
		next = opt->nexthdr;
		if (next == NEXTHDR_FRAGMENT)
			cur += 8;
		else
			cur += (opt->hdrlen + 1) * 8;
	}
	cnt = bpf_map_lookup_elem(&l4_proto, &next);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	return 0;
}
