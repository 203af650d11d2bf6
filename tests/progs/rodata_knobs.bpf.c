// Loader-set knobs (const volatile: a libbpf skeleton's rodata->..., set before
// load) controlling loops and branches, next to plain const data the compiler left
// in .rodata, which no loader changes.
#include <stdbool.h>
#include "common.h"

enum run_mode { MODE_OFF, MODE_FAST, MODE_FULL };

const volatile __u32 nloops = 4;          /* loop bound: any u32 unless pinned */
const volatile bool filter_on = false;    /* libbpf-tools' filter_cg, targ_pid, ... */
const volatile __s32 targ_queue = -1;
const volatile enum run_mode run_mode = MODE_FAST;
const __u32 plain_rounds = 5;             /* plain const: stays 5 */
__u64 acc = 0;

static __always_inline __u32 mix(__u32 seed)
{
	return seed * 1103515245 + 12345;
}

/* issue 16's example: bounded by 64 rounds, not by the object's 4 */
SEC("xdp")
int knob_loop(struct xdp_md *ctx)
{
	__u32 seed = ctx->rx_queue_index;
	__u32 i;

#pragma clang loop unroll(disable)
	for (i = 0; i < nloops && i < 64; i++) {
		seed = mix(seed);
		acc += seed & 1;
	}
	return seed & 1 ? XDP_PASS : XDP_TX;
}

/* a filter knob and a mode switch: the filter's early exit is the best case only
 * when a loader turns it on; the full mode's work is the worst case only when one
 * selects it */
SEC("xdp")
int knob_filter(struct xdp_md *ctx)
{
	__s32 queue = ctx->rx_queue_index;
	__u32 seed = queue;

	if (filter_on && queue != targ_queue)
		return XDP_PASS;
	seed = mix(seed);
	if (run_mode == MODE_FULL) {
		seed = mix(seed);
		seed = mix(seed ^ 7);
		acc += seed;
	} else if (run_mode == MODE_FAST) {
		acc += seed & 3;
	}
	return seed & 1 ? XDP_PASS : XDP_TX;
}

/* plain const data read through a pointer the compiler cannot see through: the
 * analysis still reads 5 from .rodata, as before */
SEC("xdp")
int plain_const(struct xdp_md *ctx)
{
	const __u32 *rounds = &plain_rounds;
	__u32 seed = ctx->rx_queue_index;
	__u32 i;

	asm volatile("" : "+r"(rounds));
#pragma clang loop unroll(disable)
	for (i = 0; i < *rounds && i < 64; i++)
		seed = mix(seed);
	return seed & 1 ? XDP_PASS : XDP_TX;
}

/* a knob in a section of its own, as Cilium's CONFIG() puts them in .rodata.config */
const volatile __u16 cfg_rounds SEC(".rodata.config") = 3;

SEC("xdp")
int knob_section(struct xdp_md *ctx)
{
	__u32 seed = ctx->rx_queue_index;
	__u32 i;

#pragma clang loop unroll(disable)
	for (i = 0; i < cfg_rounds && i < 16; i++)
		seed = mix(seed);
	return seed & 1 ? XDP_PASS : XDP_TX;
}
