// Found by the C-level fuzzer (tests/cgen_gen.py seed 40171, minimised): two
// bpf_for_each_map_elem calls with different callbacks, which clang merges into one
// call after the join, each path loading its own callback's address into r2 first.
// bpflint joined the two function pointers into an unknown value and reported the
// call "with a callback bpflint cannot identify"; it now keeps both candidates and
// prices the dearer one.
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} arr SEC(".maps");

struct cbctx {
	__u64 acc;
	__u32 lim;
};

const volatile __u8 mode = 1;
__u64 sink;

static long cheap(void *map, __u32 *key, __u64 *val, struct cbctx *c)
{
	c->acc += *val;
	return 0;
}

static long dear(void *map, __u32 *key, __u64 *val, struct cbctx *c)
{
	for (__u32 j = 0; j < 12; j++)
		c->acc = c->acc * 3 + (*val ^ j);
	if (*val == 7)
		return 1;
	return 0;
}

SEC("xdp")
int callback_after_join(struct xdp_md *ctx)
{
	struct cbctx c = {};

	if (mode & 1) {
		c.lim = 3;
		bpf_for_each_map_elem(&arr, dear, &c, 0);
	} else {
		c.acc = 5;
		bpf_for_each_map_elem(&arr, cheap, &c, 0);
	}
	sink = c.acc + c.lim;
	return XDP_PASS;
}
