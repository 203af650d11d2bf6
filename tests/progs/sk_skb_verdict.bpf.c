// sk_skb stream verdict: redirect by a port hash into a sockmap.
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
} socks SEC(".maps");

SEC("sk_skb/stream_verdict")
int sk_skb_verdict(struct __sk_buff *skb)
{
	__u32 key = (skb->local_port ^ bpf_ntohl(skb->remote_port)) & 15;

	if (skb->len < 8)
		return SK_DROP;
	if (key == 0)
		return SK_PASS;
	return bpf_sk_redirect_map(skb, &socks, key, 0);
}
