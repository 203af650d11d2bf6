// A worst path behind choices outside the packet: a hash map value with a particular
// (not one-byte-repeated) field, a loader-set knob, a .kconfig extern, a global user
// space writes (.bss) and a per-CPU array sized by user space (max_entries 0 in the
// object). The witness must solve each of them (tests/test_witness.py).
#include "common.h"

struct cfg {
	__u32 mode;
	__u32 spare;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct cfg);
} cfgs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
} per_cpu SEC(".maps");  /* max_entries set by the loader (nr_cpus) */

const volatile __u32 slow_mode = 0;
__u32 budget_left;  /* .bss: user space refills it */
extern unsigned int CONFIG_HZ __kconfig;

SEC("xdp")
int world_choices(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 key, cpu = bpf_get_smp_processor_id();
	struct cfg *c;
	__u64 *count;
	int i, sum = 0;

	if (data + 4 > data_end)
		return XDP_PASS;
	key = *(__u32 *)data;
	c = bpf_map_lookup_elem(&cfgs, &key);
	if (!c || c->mode != 0x1234)
		return XDP_PASS;
	if (!slow_mode || CONFIG_HZ != 250)
		return XDP_DROP;
	if (budget_left < 1000)
		return XDP_DROP;
	count = bpf_map_lookup_elem(&per_cpu, &cpu);
	if (!count)
		return XDP_ABORTED;
	*count += 1;
#pragma unroll
	for (i = 0; i < 8; i++)
		sum += (key >> i) & 1;
	return sum > 4 ? XDP_TX : XDP_DROP;
}
