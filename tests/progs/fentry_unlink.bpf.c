// fentry/fexit on a kernel function: arguments read from the u64 context array.
#include "common.h"

__u64 calls;
__u64 cwd_calls;
__u64 failures;

SEC("fentry/do_unlinkat")
int fentry_unlink(__u64 *ctx)
{
	int dfd = (int)ctx[0];

	__sync_fetch_and_add(&calls, 1);
	if (dfd == -100)
		__sync_fetch_and_add(&cwd_calls, 1);
	return 0;
}

SEC("fexit/do_unlinkat")
int fexit_unlink(__u64 *ctx)
{
	long ret = (long)ctx[2];

	if (ret < 0)
		__sync_fetch_and_add(&failures, 1);
	return 0;
}
