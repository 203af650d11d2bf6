// Kernel limits the bounds rely on: bpf_iter_num_new refuses a range of more than
// BPF_MAX_LOOPS elements, bpf_loop runs no iteration when its flags are not 0.
#include "../common.h"

volatile __u64 acc;

static int add_cb(__u32 index, void *data)
{
	acc += index;
	return 0;
}

SEC("raw_tp/sys_enter")
int iter_huge_range(void *ctx)
{
	int i;

	bpf_for(i, 0, 1 << 30)  /* E2BIG: the iterator is empty */
		acc += i;
	return 0;
}

SEC("raw_tp/sys_enter")
int iter_unknown_range(struct bpf_raw_tracepoint_args *ctx)
{
	int i;

	bpf_for(i, 0, (int)ctx->args[0])  /* at most BPF_MAX_LOOPS elements */
		acc += i;
	return 0;
}

SEC("raw_tp/sys_enter")
int loop_bad_flags(void *ctx)
{
	return bpf_loop(1000, add_cb, 0, 1);  /* -EINVAL, no callback */
}
