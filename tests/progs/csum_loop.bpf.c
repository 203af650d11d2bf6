// IPv4 header checksum over the (IHL-dependent) header words: a loop whose trip
// count is the header length, bounded by the 60-byte maximum. The header is
// copied to the stack with bpf_skb_load_bytes, options only when present.
#include "common.h"

SEC("tc")
int csum_loop(struct __sk_buff *skb)
{
	__u16 hdr[30] = {};
	__u32 csum = 0, words;
	int i;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 0;
	if (bpf_skb_load_bytes(skb, 14, hdr, 20) < 0)
		return 0;
	words = (hdr[0] & 0x0f) * 2; /* ver_ihl is the first byte (little endian) */
	if (words < 10)
		return 2;
	if (words > 10 && bpf_skb_load_bytes(skb, 34, &hdr[10], 40) < 0)
		return 2;
#pragma clang loop unroll(disable)
	for (i = 0; i < 30; i++) {
		if (i >= words)
			break;
		csum += hdr[i];
	}
	csum = (csum & 0xffff) + (csum >> 16);
	csum = (csum & 0xffff) + (csum >> 16);
	return csum == 0xffff ? 0 : 2;
}
