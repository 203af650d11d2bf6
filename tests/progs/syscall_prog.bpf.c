// BPF_PROG_TYPE_SYSCALL: run from userspace with an argument struct as context.
#include "common.h"

struct args {
	__u32 op;
	__u32 count;
	__u64 values[8];
	__u64 result;
};

SEC("syscall")
int syscall_sum(struct args *a)
{
	__u64 sum = 0, vals[8];
	__u32 n = a->count;
	int i;

	if (a->op != 1)
		return -22;
	if (n > 8)
		n = 8;
	/* ctx must be read at constant offsets: copy the array to the stack */
	__builtin_memcpy(vals, a->values, sizeof(vals));
#pragma clang loop unroll(disable)
	for (i = 0; i < 8; i++) {
		if (i >= n)
			break;
		sum += vals[i];
	}
	a->result = sum;
	return 0;
}
