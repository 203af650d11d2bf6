// Known counts: TC, socket filter, kprobe and raw_tp programs.
#include "known.h"

SEC("tc")
int k_tc_len(struct __sk_buff *skb)
{
	__u32 n = skb->len;

	if (n > 40)
		n = 40;
	NOUNROLL
	for (__u32 i = 0; i < n; i++)
		acc += i;
	return 0;
}

SEC("socket")
int k_sock_load(struct __sk_buff *skb)
{
	__u8 b = 0;

	if (bpf_skb_load_bytes(skb, 0, &b, 1))
		return 0;
	NOUNROLL
	for (__u32 i = 0; i < (b & 15); i++)
		acc += i;
	return skb->len;
}

SEC("kprobe/do_nanosleep")
int k_kprobe(struct regs_x86 *regs)
{
	__u32 n = ARG1(regs) & 31;

	NOUNROLL
	for (__u32 i = 0; i < n; i++)
		acc += i;
	return 0;
}

SEC("raw_tp/sys_enter")
int k_raw_tp(struct bpf_raw_tracepoint_args *args)
{
	__u64 n = args->args[1];

	if (n > 20)
		n = 20;
	NOUNROLL
	for (__u64 i = 0; i < n; i++) {
		if (i < 5)
			acc += i;
		else
			acc2 ^= i;
	}
	return 0;
}
