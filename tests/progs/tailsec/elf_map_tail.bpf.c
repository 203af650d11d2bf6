// Tail calls the iproute2 way, as Cilium's datapath declares them: prog arrays are
// legacy struct bpf_elf_map definitions (section "maps") with an .id, and the
// program of section "ID/KEY" goes into slot KEY of the map whose .id is ID
// (iproute2's tc loader; Cilium's pkg/bpf iproute2Compat). bpflint reads those
// slots as statically known targets (bpflint/obj/tail_sections.py).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct bpf_elf_map {
	__u32 type;
	__u32 size_key;
	__u32 size_value;
	__u32 max_elem;
	__u32 flags;
	__u32 id;
	__u32 pinning;
	__u32 inner_id;
	__u32 inner_idx;
};

struct bpf_elf_map SEC("maps") calls = {
	.type = BPF_MAP_TYPE_PROG_ARRAY,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u32),
	.max_elem = 8,
	.id = 2,
};

/* a second prog array: its slots are written in hex and octal below */
struct bpf_elf_map SEC("maps") ring = {
	.type = BPF_MAP_TYPE_PROG_ARRAY,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u32),
	.max_elem = 4,
	.id = 7,
};

/* no .id: filled by the program's loader at run time, its tail calls stay open */
struct bpf_elf_map SEC("maps") dynamic = {
	.type = BPF_MAP_TYPE_PROG_ARRAY,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u32),
	.max_elem = 4,
};

volatile __u64 acc;

/* entry -> stage_one -> stage_three: a chain two tail calls deep */
SEC("2/3")
int stage_three(struct __sk_buff *skb)
{
	if (skb->len > 64)
		acc ^= skb->mark;
	bpf_tail_call(skb, &dynamic, skb->len & 3);
	return 0;
}

SEC("2/1")
int stage_one(struct __sk_buff *skb)
{
	acc += skb->len;
	bpf_tail_call(skb, &calls, 3);
	return 1;
}

SEC("tc")
int entry(struct __sk_buff *skb)
{
	if (skb->mark)
		bpf_tail_call(skb, &calls, 1);
	return 0;
}

/* a variable index: other objects may fill the map's other slots (Cilium's policy
 * prog array holds every endpoint's program), so this call stays open */
SEC("tc")
int dispatch(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &calls, skb->mark & 7);
	return 0;
}

/* ping -> pong -> ping -> ...: a cycle, as Cilium's from-netdev and NAT programs
 * (a flag in tc_index ends theirs at run time; nothing ends this one but the
 * kernel's limit of 33 tail calls) */
SEC("7/0x0")
int ping(struct __sk_buff *skb)
{
	acc += 1;
	bpf_tail_call(skb, &ring, 1);
	return 0;
}

SEC("7/01")
int pong(struct __sk_buff *skb)
{
	acc -= 1;
	bpf_tail_call(skb, &ring, 0);
	return 0;
}
