// kprobe + kretprobe pair: per-pid entry timestamps (hash) and latency counts (LRU).
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} lat_total SEC(".maps");

SEC("kprobe/do_unlinkat")
int kprobe_entry(struct regs_x86 *regs)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 ts = bpf_ktime_get_ns();

	if (ARG1(regs) == (unsigned long)-100) /* AT_FDCWD only */
		bpf_map_update_elem(&start, &pid, &ts, BPF_ANY);
	return 0;
}

SEC("kretprobe/do_unlinkat")
int kretprobe_exit(struct regs_x86 *regs)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 *tsp, *tot, delta;

	tsp = bpf_map_lookup_elem(&start, &pid);
	if (!tsp)
		return 0;
	delta = bpf_ktime_get_ns() - *tsp;
	bpf_map_delete_elem(&start, &pid);
	if ((long)RET(regs) < 0)
		return 0;
	tot = bpf_map_lookup_elem(&lat_total, &pid);
	if (tot) {
		__sync_fetch_and_add(tot, delta);
	} else {
		bpf_map_update_elem(&lat_total, &pid, &delta, BPF_NOEXIST);
	}
	return 0;
}
