// bpf_user_ringbuf_drain: consume samples user space wrote, one callback each.
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 4096);
} user_rb SEC(".maps");

struct sample {
	__u32 op;
	__u32 value;
};

__u64 total;
__u64 bad;

static long drain_cb(struct bpf_dynptr *dynptr, void *ctx)
{
	struct sample s;

	if (bpf_dynptr_read(&s, sizeof(s), dynptr, 0, 0)) {
		bad++;
		return 1; /* stop draining */
	}
	if (s.op == 1)
		total += s.value;
	else
		total -= s.value;
	return 0;
}

SEC("syscall")
int drain_user_rb(void *ctx)
{
	long n = bpf_user_ringbuf_drain(&user_rb, drain_cb, 0, 0);

	return n < 0 ? 1 : 0;
}
