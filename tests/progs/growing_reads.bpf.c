// A loop whose helper call costs more every iteration: each reads a longer
// buffer, so the same block is priced differently in each iteration.
#include "common.h"

SEC("kprobe/do_nanosleep")
int growing_reads(void *ctx)
{
	char buf[64];
	__u32 i;

#pragma clang loop unroll(disable)
	for (i = 1; i <= 8; i++)
		bpf_probe_read_kernel(buf, i * 8, ctx);
	return buf[0];
}
