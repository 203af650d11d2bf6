// SPDX-License-Identifier: GPL-2.0
/* openlat: latency of openat() and a count of fsync()s, per process.
 *
 * sys_enter_openat remembers when each thread entered the call; sys_exit_openat
 * turns that into a latency, adds it to a per-CPU log2 histogram and, for slow
 * opens, sends an event with the file name through a ring buffer. A kprobe on
 * vfs_fsync_range counts fsyncs per CPU and reports who issued them.
 */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "openlat.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader before load (libbpf skeleton .rodata). */
const volatile __u32 target_tgid = 0;
const volatile __u64 min_latency_ns = 10000;

/* The raw layout of syscalls/sys_{enter,exit}_* tracepoints: the common header,
 * the syscall number, then one 8-byte slot per argument (see the events' format). */
struct syscall_enter_ctx {
	__u64 common;
	__s32 syscall_nr;
	__u32 pad;
	__u64 args[6];
};

struct syscall_exit_ctx {
	__u64 common;
	__s32 syscall_nr;
	__u32 pad;
	__s64 ret;
};

struct inflight {
	__u64 start_ns;
	const char *filename;
	__u32 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct inflight);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HIST_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} latency_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} fsync_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline int traced(__u64 pid_tgid)
{
	return target_tgid == 0 || (pid_tgid >> 32) == target_tgid;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int handle_openat_enter(struct syscall_enter_ctx *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!traced(pid_tgid))
		return 0;
	struct inflight start = {
		.start_ns = bpf_ktime_get_ns(),
		.filename = (const char *)ctx->args[1],
		.flags = (__u32)ctx->args[2],
	};
	bpf_map_update_elem(&inflight, &pid_tgid, &start, BPF_ANY);
	return 0;
}

static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 r = 0, shift;
	shift = (v > 0xffffffff) << 5; v >>= shift; r |= shift;
	shift = (v > 0xffff) << 4; v >>= shift; r |= shift;
	shift = (v > 0xff) << 3; v >>= shift; r |= shift;
	shift = (v > 0xf) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r < HIST_SLOTS ? r : HIST_SLOTS - 1;
}

struct basename_scan {
	const char *name;
	__u32 len;
	__u32 basename_off;
};

/* bpf_loop callback: remember where the component after the last '/' starts. */
static long scan_slash(__u64 index, struct basename_scan *scan)
{
	if (index >= scan->len)
		return 1; /* stop */
	if (scan->name[index & (NAME_LEN - 1)] == '/')
		scan->basename_off = index + 1;
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int handle_openat_exit(struct syscall_exit_ctx *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct inflight *start = bpf_map_lookup_elem(&inflight, &pid_tgid);
	if (!start)
		return 0;
	__u64 latency_ns = bpf_ktime_get_ns() - start->start_ns;
	const char *filename = start->filename;
	__u32 flags = start->flags;
	bpf_map_delete_elem(&inflight, &pid_tgid);

	__u32 slot = log2_slot(latency_ns);
	__u64 *count = bpf_map_lookup_elem(&latency_hist, &slot);
	if (count)
		*count += 1;

	if (latency_ns < min_latency_ns)
		return 0;
	struct event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev)
		return 0;
	ev->kind = EVENT_OPEN;
	ev->pid = pid_tgid >> 32;
	ev->latency_ns = latency_ns;
	ev->ret = ctx->ret;
	ev->flags = flags;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	long len = bpf_probe_read_user_str(ev->name, sizeof(ev->name), filename);

	struct basename_scan scan = {
		.name = ev->name,
		.len = len > 0 ? len : 0,
		.basename_off = 0,
	};
	bpf_loop(NAME_LEN, scan_slash, &scan, 0);
	ev->basename_off = scan.basename_off;
	bpf_ringbuf_submit(ev, 0);
	return 0;
}

SEC("kprobe/vfs_fsync_range")
int BPF_KPROBE(handle_fsync, void *file, long long start, long long end, int datasync)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!traced(pid_tgid))
		return 0;
	__u32 zero = 0;
	__u64 *count = bpf_map_lookup_elem(&fsync_count, &zero);
	if (count)
		*count += 1;

	struct event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev)
		return 0;
	ev->kind = EVENT_FSYNC;
	ev->pid = pid_tgid >> 32;
	ev->latency_ns = 0;
	ev->ret = end - start;
	ev->flags = datasync;
	ev->basename_off = 0;
	ev->name[0] = '\0';
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	bpf_ringbuf_submit(ev, 0);
	return 0;
}
