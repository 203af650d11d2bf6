// A switch on the IP protocol (jump chain or table compiled to compares), in a
// socket filter that reads through bpf_skb_load_bytes.
#include "common.h"

SEC("socket")
int switch_proto(struct __sk_buff *skb)
{
	struct ip4_hdr ip;
	__u32 keep;

	if (bpf_skb_load_bytes(skb, 14, &ip, sizeof(ip)) < 0)
		return 0;
	switch (ip.protocol) {
	case IPPROTO_TCP_:
		keep = 96;
		break;
	case IPPROTO_UDP_:
		keep = 64;
		break;
	case IPPROTO_ICMP_:
		keep = ip.ttl < 2 ? 0 : 128;
		break;
	case 41: /* IPv6-in-IPv4 */
	case 47: /* GRE */
		keep = 256;
		break;
	case 132: /* SCTP */
		keep = 80;
		break;
	default:
		keep = 0;
	}
	return keep;
}
