// cgroup_skb ingress filter: byte accounting with an atomic add, drop oversized.
#include "common.h"

__u64 ingress_bytes;
__u64 dropped;

SEC("cgroup_skb/ingress")
int cgroup_ingress(struct __sk_buff *skb)
{
	__sync_fetch_and_add(&ingress_bytes, skb->len);
	if (skb->len > 9000) {
		__sync_fetch_and_add(&dropped, 1);
		return 0;
	}
	if (skb->protocol == bpf_htons(ETH_P_IPV6) && skb->len < 40)
		return 0;
	return 1;
}
