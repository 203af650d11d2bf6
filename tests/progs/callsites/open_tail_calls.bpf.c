// Tail calls into a prog array with no static targets (tests/test_callsites.py):
// bpflint cannot know where they go (BPF005). bpf_tail_call_static is inline asm
// in libbpf's bpf_helpers.h, so BTF gives its instructions that header's line.
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 8);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} jumps SEC(".maps");

/* three static tail calls on three paths: one finding, three call sites */
SEC("tc")
int dispatch_static(struct __sk_buff *skb)
{
	if (skb->mark == 1)
		bpf_tail_call_static(skb, &jumps, 1);
	else if (skb->mark == 2)
		bpf_tail_call_static(skb, &jumps, 2);
	bpf_tail_call_static(skb, &jumps, 3);
	return 0;
}

/* one plain tail call: one finding at its own line */
SEC("tc")
int dispatch_once(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &jumps, skb->mark & 7);
	return 0;
}
