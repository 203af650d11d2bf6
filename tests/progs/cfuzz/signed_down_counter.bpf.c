// Found by the C-level fuzzer (tests/cgen_gen.py, first run, seed 1105, minimised): a
// signed counter counting down from a loader-set u8. clang fuses the decrement into
// the counter's sign extension (r <<= 32; r += -1 << 32; r s>>= 32), which bpflint's
// induction variables did not follow: the loop was reported unbounded although the
// kernel verifier accepts it.
#include "common.h"

const volatile __u8 rounds = 2;

SEC("xdp")
int signed_down_counter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 acc = 0;

	for (__s32 i = rounds; i > 0; i--) {
		struct eth_hdr *eth = data;

		if ((void *)(eth + 1) > data_end)
			return XDP_DROP;
		if (eth->proto == bpf_htons(ETH_P_IP)) {
			struct ip4_hdr *ip = (void *)(eth + 1);

			if ((void *)(ip + 1) > data_end)
				return XDP_DROP;
			__u32 hl = (ip->ver_ihl & 15) * 4;

			if (hl < sizeof(*ip))
				return XDP_DROP;
			struct udp_hdr *l4 = (void *)ip + hl;

			if ((void *)(l4 + 1) > data_end)
				return XDP_DROP;
			acc += ip->protocol;
			if (l4->dest == bpf_htons(812))
				acc |= 1;
		}
	}
	return (acc & 1) ? XDP_PASS : XDP_DROP;
}
