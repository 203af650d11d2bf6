// perf_event program: count samples per user/kernel mode, emit every 64th.
#include "common.h"

struct perf_ctx {
	struct regs_x86 regs;
	__u64 sample_period;
	__u64 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} samples SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} sample_events SEC(".maps");

SEC("perf_event")
int perf_sample(struct perf_ctx *ctx)
{
	__u32 kernel = (ctx->regs.cs & 3) == 0;
	__u64 *cnt = bpf_map_lookup_elem(&samples, &kernel);
	__u64 ip = ctx->regs.ip;

	if (!cnt)
		return 0;
	*cnt += 1;
	if ((*cnt & 63) == 0)
		bpf_perf_event_output(ctx, &sample_events, BPF_F_CURRENT_CPU, &ip, sizeof(ip));
	return 0;
}
