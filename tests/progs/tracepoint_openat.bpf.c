// Tracepoint on sys_enter_openat: per-CPU counters by flag class.
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} open_flags SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_openat")
int tp_openat(struct sys_enter_rec *rec)
{
	unsigned long flags = rec->args[2];
	__u32 slot = 0;
	__u64 *cnt;

	if (flags & 0100) /* O_CREAT */
		slot = 1;
	else if (flags & 01000) /* O_TRUNC */
		slot = 2;
	else if ((flags & 3) != 0)
		slot = 3;
	cnt = bpf_map_lookup_elem(&open_flags, &slot);
	if (cnt)
		*cnt += 1;
	return 0;
}
