// USDT-style probe: a uprobe on a static tracepoint whose arguments live in
// registers named by the probe's note (here: arg0 in rdi, arg1 in rsi), decoded
// by hand the way libbpf's usdt.bpf.h spec table would.
#include "common.h"

struct usdt_arg_spec {
	__u8 reg; /* 0: rdi, 1: rsi, 2: rdx */
	__u8 size; /* 1, 2, 4 or 8 */
	__u8 is_signed;
};

const volatile struct usdt_arg_spec specs[2] = {
	{ .reg = 0, .size = 8, .is_signed = 0 },
	{ .reg = 1, .size = 4, .is_signed = 1 },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u64);
	__type(value, __s64);
} query_time SEC(".maps");

static __always_inline long usdt_arg(struct regs_x86 *regs, int i)
{
	/* ctx fields must be read at constant offsets: load all, then select */
	unsigned long di = regs->di, si = regs->si, dx = regs->dx;
	unsigned long raw = specs[i].reg == 0 ? di : specs[i].reg == 1 ? si : dx;

	if (specs[i].size == 4)
		return specs[i].is_signed ? (long)(int)raw : (long)(unsigned int)raw;
	return raw;
}

SEC("usdt")
int usdt_query_done(struct regs_x86 *regs)
{
	__u64 query_id = usdt_arg(regs, 0);
	__s64 duration = usdt_arg(regs, 1);

	if (duration < 0)
		return 0;
	bpf_map_update_elem(&query_time, &query_id, &duration, BPF_ANY);
	return 0;
}
