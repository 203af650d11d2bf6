// Compiled with -mcpu=v4: sign-extending loads (ldsx), movsx, sdiv/smod and bswap.
#include "common.h"

volatile __s64 acc;

SEC("xdp")
int v4_ops(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__s8 *sb = data;
	__s16 *sh = data;
	__s32 *sw = data;
	__s64 a, b, q, r;
	__u32 word;

	if ((void *)(sw + 2) > end)
		return XDP_DROP;
	a = sb[0];                /* ldsx 8 */
	b = sh[1];                /* ldsx 16 */
	a += sw[1];               /* ldsx 32 */
	word = *(__u32 *)data;
	acc = (__s64)(__s32)(word + 1);     /* movsx 32 */
	acc += (__s8)(word >> 8);           /* movsx 8 */
	if (b == 0)
		b = 7;
	q = a / b;                /* sdiv */
	r = (a ^ 0x5555) % (b | 3); /* smod */
	acc += q + r;
	acc += __builtin_bswap32(word); /* bswap 32 */
	acc += __builtin_bswap64((__u64)a); /* bswap 64 */
	return q < 0 ? XDP_DROP : XDP_PASS;
}
