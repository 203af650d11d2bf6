// Example project for the budget gate's end-to-end tests: an XDP program whose
// worst case scales with ROUNDS (the tests raise it), and a cheap one.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define ROUNDS 16

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int xdp_mix(struct xdp_md *ctx)
{
	__u32 h = ctx->ingress_ifindex;

#pragma clang loop unroll(disable)
	for (int i = 0; i < ROUNDS; i++) {     /* HOT */
		h = (h ^ (__u32)i) * 2654435761u;  /* HOT */
		h ^= h >> 13;                      /* HOT */
	}
	return (h & 1) ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
