// Classic socket filter with LD_ABS / LD_IND packet loads (load_byte/half/word).
#include "common.h"

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

SEC("socket")
int socket_filter(struct __sk_buff *skb)
{
	__u64 ihl;

	if (load_half(skb, 12) != ETH_P_IP)
		return 0;
	if (load_byte(skb, 23) != IPPROTO_TCP_)
		return 0;
	ihl = (load_byte(skb, 14) & 0x0f) << 2;
	/* LD_IND: offset from a register */
	if (load_half(skb, 14 + ihl + 2) == 80)
		return skb->len;
	if (load_word(skb, 26) == 0x7f000001)
		return -1;
	return 0;
}
