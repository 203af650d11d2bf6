// raw tracepoint emitting events through a ring buffer (reserve/submit/discard).
#include "common.h"

struct event {
	__u32 pid;
	__u32 nr;
	__u64 ts;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

SEC("raw_tp/sys_enter")
int raw_tp_enter(struct bpf_raw_tracepoint_args *ctx)
{
	long nr = ctx->args[1];
	struct event *e;

	if (nr != 257 && nr != 59) /* openat, execve */
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->nr = nr;
	e->ts = bpf_ktime_get_ns();
	if (bpf_get_current_comm(e->comm, sizeof(e->comm))) {
		bpf_ringbuf_discard(e, 0);
		return 0;
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}
