// Known counts: shapes where a path-insensitive bound may be loose (correlations
// between iterations, variable steps, loops whose exit is a shrinking range).
#include "known.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} vals SEC(".maps");

SEC("xdp")
int k_var_step(struct xdp_md *ctx)
{
	PKT(32);
	__u8 buf[32];
	__u32 i = 0;

	__builtin_memcpy(buf, p, 32);
	NOUNROLL
	while (i < 40) {
		i += (buf[i & 31] & 3) + 1;
		acc += i;
	}
	return XDP_PASS;
}

SEC("xdp")
int k_inner_break(struct xdp_md *ctx)
{
	PKT(8);

	NOUNROLL
	for (__u32 i = 0; i < 8; i++) {
		NOUNROLL
		for (__u32 j = 0; j < 8; j++) {
			if (p[j] == i)
				break;
			acc += j;
		}
	}
	return XDP_PASS;
}

SEC("xdp")
int k_switch_loop(struct xdp_md *ctx)
{
	PKT(8);

	NOUNROLL
	for (__u32 i = 0; i < 12; i++) {
		switch (p[i & 7] & 3) {
		case 0:
			acc += 1;
			break;
		case 1:
			acc += 2;
			acc2 += 3;
			break;
		case 2:
			acc += 4;
			acc2 += 5;
			acc ^= 6;
			acc2 ^= 7;
			break;
		default:
			acc2 += i;
		}
	}
	return XDP_PASS;
}

SEC("xdp")
int k_mod3(struct xdp_md *ctx)
{
	NOUNROLL
	for (__u32 i = 0; i < 24; i++) {
		if (i % 3 == 0) {
			acc += i;
			acc2 ^= i;
			acc += 3;
			acc2 += 4;
		} else {
			acc2 += 1;
		}
	}
	return XDP_PASS;
}

SEC("xdp")
int k_first_iters(struct xdp_md *ctx)
{
	NOUNROLL
	for (__u32 i = 0; i < 20; i++) {
		if (i < 3) {
			acc += i;
			acc2 ^= i;
			acc += 3;
		}
		acc2 += 1;
	}
	return XDP_PASS;
}

SEC("xdp")
int k_u16_step7(struct xdp_md *ctx)
{
	NOUNROLL
	for (__u16 i = 0; i < 300; i += 7)
		acc += i;
	return XDP_PASS;
}

SEC("xdp")
int k_signed_down3(struct xdp_md *ctx)
{
	NOUNROLL
	for (int i = 30; i >= 0; i -= 3)
		acc += i;
	return XDP_PASS;
}

static int cb_tri(__u32 idx, void *data)
{
	NOUNROLL
	for (__u32 j = 0; j < (idx & 15); j++)
		acc += j;
	return 0;
}

SEC("xdp")
int k_bpf_loop_tri(struct xdp_md *ctx)
{
	bpf_loop(10, cb_tri, NULL, 0);
	return XDP_PASS;
}

SEC("xdp")
int k_iter_tri(struct xdp_md *ctx)
{
	int i;

	bpf_for(i, 0, 6) {
		NOUNROLL
		for (int j = 0; j < i; j++)
			acc += j;
	}
	return XDP_PASS;
}

static long cb_paths(void *map, __u32 *key, __u32 *val, void *data)
{
	if (*val & 1) {
		acc += *key;
		acc2 ^= *val;
		acc += 3;
		acc2 += 4;
	}
	return 0;
}

SEC("xdp")
int k_foreach_paths(struct xdp_md *ctx)
{
	bpf_for_each_map_elem(&vals, cb_paths, NULL, 0);
	return XDP_PASS;
}

SEC("xdp")
int k_bpf_loop_in_loop(struct xdp_md *ctx)
{
	NOUNROLL
	for (__u32 i = 0; i < 4; i++)
		bpf_loop(3 + i, cb_tri, NULL, 0);
	return XDP_PASS;
}
