// Map-heavy tracing code: hash, array, per-CPU, LRU maps; ring buffer reserve and
// output; perf event output; atomics (fetch_add, cmpxchg, xchg).
#include "common.h"

struct flow_key {
	__u32 pid;
	__u32 cpu;
};

struct flow_val {
	__u64 count;
	__u64 bytes;
	__u64 last_ns;
	__u64 owner;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, __u64);
} recent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} per_cpu_hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8192);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf_out SEC(".maps");

struct note {
	__u32 pid;
	__u32 kind;
	__u64 value;
};

SEC("kprobe/vfs_write")
int maps_heavy(struct regs_x86 *regs)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct flow_key key = { .pid = id >> 32, .cpu = bpf_get_smp_processor_id() };
	__u64 size = ARG3(regs), now = bpf_ktime_get_ns(), one = 1, *hits, *cfg, old;
	__u32 zero = 0, pid = id >> 32;
	struct flow_val *val, init = {};
	struct note *n, note;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (cfg && *cfg == 0)
		return 0; /* disabled */

	val = bpf_map_lookup_elem(&flows, &key);
	if (!val) {
		init.count = 1;
		init.bytes = size;
		init.last_ns = now;
		if (bpf_map_update_elem(&flows, &key, &init, BPF_NOEXIST))
			return 0;
	} else {
		__sync_fetch_and_add(&val->count, 1);
		__sync_fetch_and_add(&val->bytes, size);
		old = __sync_lock_test_and_set(&val->last_ns, now); /* xchg */
		__sync_val_compare_and_swap(&val->owner, 0, id);
		if (now - old > 1000000000ull) {
			n = bpf_ringbuf_reserve(&rb, sizeof(*n), 0);
			if (n) {
				n->pid = pid;
				n->kind = 1;
				n->value = val->bytes;
				bpf_ringbuf_submit(n, 0);
			}
		}
	}

	hits = bpf_map_lookup_elem(&per_cpu_hits, &pid);
	if (hits)
		*hits += 1;
	else
		bpf_map_update_elem(&per_cpu_hits, &pid, &one, BPF_ANY);

	if (bpf_map_lookup_elem(&recent, &pid) == 0) {
		bpf_map_update_elem(&recent, &pid, &now, BPF_ANY);
		note.pid = pid;
		note.kind = 2;
		note.value = size;
		bpf_ringbuf_output(&rb, &note, sizeof(note), 0);
		bpf_perf_event_output(regs, &perf_out, BPF_F_CURRENT_CPU, &note, sizeof(note));
	}
	return 0;
}
