// Branchy classifier on __sk_buff fields: if/else chains of different lengths.
#include "common.h"

SEC("tc")
int branchy_tc(struct __sk_buff *skb)
{
	__u32 mark = skb->mark;
	__u32 len = skb->len;
	int verdict = 0; /* TC_ACT_OK */

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		if (len > 1400)
			mark |= 0x10;
		else if (len > 512)
			mark |= 0x20;
		else
			mark |= 0x40;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		mark |= 0x80;
		if (skb->priority > 6)
			verdict = 2; /* TC_ACT_SHOT */
	} else {
		return 0;
	}
	if (mark & 0x100)
		mark ^= skb->hash;
	if (skb->vlan_present && skb->vlan_tci > 100)
		mark += skb->vlan_tci;
	skb->mark = mark;
	return verdict;
}
