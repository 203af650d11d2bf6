// uprobe/uretprobe on a user function: allocation size histogram (log2 buckets).
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, __u64);
} sizes SEC(".maps");

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0, shift;

	shift = (v > 0xffffffff) << 5; v >>= shift; r |= shift;
	shift = (v > 0xffff) << 4; v >>= shift; r |= shift;
	shift = (v > 0xff) << 3; v >>= shift; r |= shift;
	shift = (v > 0xf) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

SEC("uprobe")
int uprobe_malloc(struct regs_x86 *regs)
{
	__u32 slot = log2_u64(ARG1(regs));
	__u64 *cnt = bpf_map_lookup_elem(&sizes, &slot);

	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	return 0;
}

SEC("uretprobe")
int uretprobe_malloc(struct regs_x86 *regs)
{
	__u32 slot = 31;
	__u64 *cnt;

	if (RET(regs) != 0)
		return 0;
	cnt = bpf_map_lookup_elem(&sizes, &slot); /* count failed allocations */
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	return 0;
}
