// Open-coded numeric iterators: bpf_for, bpf_repeat and the raw kfuncs.
#include "common.h"

volatile __u64 acc;

SEC("raw_tp/sys_enter")
int iter_for(void *ctx)
{
	int i;

	bpf_for(i, 0, 20)
		acc += i;
	return 0;
}

SEC("raw_tp/sys_enter")
int iter_repeat(void *ctx)
{
	bpf_repeat(7)
		acc ^= 0x55;
	return 0;
}

SEC("raw_tp/sys_enter")
int iter_raw(struct bpf_raw_tracepoint_args *ctx)
{
	struct bpf_iter_num it;
	int *v;
	int lo = 3, hi = 3 + ((int)ctx->args[1] & 15); /* 0..15 rounds */

	bpf_iter_num_new(&it, lo, hi);
	while ((v = bpf_iter_num_next(&it))) {
		if (*v & 1)
			acc += *v;
	}
	bpf_iter_num_destroy(&it);
	return 0;
}
