/* Shared between the BPF side and the user-space reader of the ring buffer. */
#ifndef OPENLAT_H
#define OPENLAT_H

#define TASK_COMM_LEN 16
#define NAME_LEN 256 /* power of two: indexes are masked with NAME_LEN - 1 */
#define HIST_SLOTS 32 /* log2(latency in ns) buckets: up to ~4 s */

enum event_kind {
	EVENT_OPEN = 1,
	EVENT_FSYNC = 2,
};

struct event {
	__u32 kind;
	__u32 pid;
	__u64 latency_ns;
	__s64 ret;
	__u32 basename_off; /* where the last path component starts in name */
	__u32 flags;
	char comm[TASK_COMM_LEN];
	char name[NAME_LEN];
};

#endif /* OPENLAT_H */
