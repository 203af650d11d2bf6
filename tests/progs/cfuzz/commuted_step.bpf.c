// C fuzzer seed 70027 (tests/cgen_idioms.py, a while loop whose counter moves in
// several branches), minimised. The counter's step is 1 or 2 from a branch; clang
// computes it into a register first and adds the counter to it (r2 = 1 or 2;
// r2 += r9; r9 = r2), so the counter's new value is a register of known range plus
// the counter. The inner loop takes the register holding the bound; the bound comes
// back from its stack spill on that path only. The kernel accepts it; the loop was
// reported unbounded.
#include "common.h"

__u64 sink;

static __always_inline __u64 rd8(struct __sk_buff *skb, __u32 off)
{
	__u8 b = 0;

	if (bpf_skb_load_bytes(skb, off, &b, 1))
		return 0;
	return b;
}

SEC("socket")
int prog(struct __sk_buff *ctx)
{
	__u64 acc = 0;
	__u32 n = rd8(ctx, 35);

	if (n > 29)
		n = 29;
	__u32 i = 0;
	while (i < n) {
		if (rd8(ctx, 26 + i) & 6) {
			acc += i;
			i += 3;
			continue;
		}
		for (__s32 j = 23; j > 0; j--)
			acc += rd8(ctx, 35);
		if (acc & 9)
			i += 2;
		else
			i += 1;
	}
	sink = acc;
	return acc & 0xff;
}
