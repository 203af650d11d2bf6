// __kconfig externs: libbpf fills them in from the running kernel's config before
// load, so they are loader-set too (never in the object's bytes).
#include <stdbool.h>
#include "common.h"

extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern bool CONFIG_BPF_JIT_ALWAYS_ON __kconfig __weak;
__u64 acc = 0;

SEC("xdp")
int kconfig_gate(struct xdp_md *ctx)
{
	__u32 seed = ctx->rx_queue_index;

	if (LINUX_KERNEL_VERSION >= ((6 << 16) + (1 << 8))) {
		seed = seed * 1103515245 + 12345;
		seed = seed * 1103515245 + 12345;
		acc += seed;
	}
	if (CONFIG_BPF_JIT_ALWAYS_ON)
		acc++;
	return seed & 1 ? XDP_PASS : XDP_TX;
}
