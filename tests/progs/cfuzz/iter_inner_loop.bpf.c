// Found by the C-level fuzzer (tests/cgen_gen.py seed 10, minimised): a bpf_for whose
// body holds a counted loop over packet bytes. The inner loop makes no call, so it
// cannot move the iterator; bpflint used to assume every inner loop might, and
// reported the bpf_for unbounded although the kernel verifier accepts it.
#include "common.h"

const volatile __u8 rounds = 3;

SEC("xdp")
int iter_inner_loop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 acc = 0;
	int it;

	bpf_for(it, 0, rounds) {
		for (__u32 i = 0; i < 20; i++) {
			__u8 *p = data + 47;

			if ((void *)(p + 1) <= data_end && (*p & 13) <= 1)
				acc ^= it + i;
		}
	}
	return (acc & 1) ? XDP_PASS : XDP_DROP;
}
