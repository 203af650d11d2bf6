// Reader test: tail-call targets in sections no loader names ("2/1", as Cilium
// writes them) next to a "tc" entry and a prog array: they take the entry's type.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} calls SEC(".maps");

SEC("2/1")
int tail_one(struct __sk_buff *skb)
{
	return skb->len > 64;
}

SEC("tc")
int entry(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &calls, 1);
	return 0;
}
