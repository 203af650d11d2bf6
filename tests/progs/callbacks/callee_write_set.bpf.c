// A loop counter kept on the stack across calls of subprograms given a pointer
// into the same frame: the caller forgets only what the callee may write.
#include "common.h"

volatile __u64 sink;

struct pair {
	__u32 a;
	__u32 b;
	__u64 c;
};

/* writes one field of the struct it gets: 4 bytes at offset 4 */
static __noinline void set_b(struct pair *p, __u32 x)
{
	p->b = x * 3;
}

/* gets &s.b and writes s.a through container_of: 4 bytes below the pointer */
static __noinline void set_a_below(__u32 *pb, __u32 x)
{
	struct pair *p = (struct pair *)((char *)pb - 4);

	p->a = x + 1;
}

struct holder {
	__u64 *out;
};

/* writes through a pointer it loads: where, its summary cannot tell */
static __noinline void put_via(struct holder *h, __u32 x)
{
	*h->out = x * 5;
}

SEC("xdp")
int field_counter(struct xdp_md *ctx)
{
	struct pair s = {};
	volatile __u64 i; /* on the stack: reloaded at every test */
	__u32 n = ctx->rx_queue_index & 15;

	for (i = 0; i < n; i++)
		set_b(&s, i);
	sink = s.b;
	return XDP_PASS;
}

SEC("xdp")
int below_counter(struct xdp_md *ctx)
{
	struct pair s = {};
	volatile __u64 i; /* on the stack: reloaded at every test */
	__u32 n = ctx->rx_queue_index & 15;

	for (i = 0; i < n; i++)
		set_a_below(&s.b, i);
	sink = s.a;
	return XDP_PASS;
}

SEC("xdp")
int loaded_ptr_counter(struct xdp_md *ctx)
{
	__u64 v = 0;
	struct holder h = { &v };
	volatile __u64 i; /* on the stack: reloaded at every test */
	__u32 n = ctx->rx_queue_index & 15;

	for (i = 0; i < n; i++)
		put_via(&h, i);
	sink = v;
	return XDP_PASS;
}
