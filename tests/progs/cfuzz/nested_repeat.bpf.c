// Found by the C-level fuzzer (tests/cgen_gen.py seed 80105, minimised): a
// bpf_repeat over a loader-set __u8 inside a bpf_repeat over a clamped packet byte.
// An inner loop calling a kfunc was taken to consume every open-coded iterator, the
// outer one's too, so the outer loop had no bound; an iterator's next given a known
// stack slot consumes that iterator only.
#include "common.h"

const volatile __u8 knob_small = 18;

SEC("xdp")
int nested_repeat(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 acc = 0;

	if (data + 60 > data_end)
		return XDP_PASS;
	__u32 n = *(__u8 *)(data + 49);
	if (n > 8)
		n = 8;
	bpf_repeat(n) {
		bpf_repeat(knob_small) {
			for (__u32 i = 0; i < 14; i++)
				acc += *(__u8 *)(data + 8 + i);
		}
	}
	return (acc & 1) ? XDP_PASS : XDP_DROP;
}
