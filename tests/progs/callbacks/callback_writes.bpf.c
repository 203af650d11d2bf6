// Callbacks and subprograms that write the caller's memory through their
// arguments: the caller then branches and loops on what they wrote.
#include "common.h"

volatile __u64 sink;

/* ---- bpf_loop with a u64 on the stack as ctx ---------------------------- */
static int acc_cb(__u32 idx, void *ctx)
{
	*(__u64 *)ctx += idx * 7;
	return 0;
}

SEC("xdp")
int loop_acc(struct xdp_md *ctx)
{
	__u64 acc = 0;
	__u32 i;

	bpf_loop(ctx->rx_queue_index & 15, acc_cb, &acc, 0);
	if (acc > 100) {
#pragma clang loop unroll(disable)
		for (i = 0; i < 8; i++)
			sink += i;
	}
	return XDP_PASS;
}

/* ---- bpf_loop with a nested struct: several fields written -------------- */
struct inner {
	__u32 hits;
	__u32 misses;
};

struct agg {
	__u64 sum;
	struct inner in;
	__u64 maxv;
	__u32 limit;
	__u32 seen;
};

static int agg_cb(__u32 idx, struct agg *a)
{
	__u32 v = (idx * 13) & 31;

	a->sum += v;
	if (v > a->maxv)
		a->maxv = v;
	if (v & 1)
		a->in.hits++;
	else
		a->in.misses++;
	if (a->sum > a->limit)
		return 1; /* stop: the sum is over the caller's limit */
	a->seen = idx + 1;
	return 0;
}

SEC("xdp")
int loop_struct(struct xdp_md *ctx)
{
	struct agg a = { .limit = ctx->rx_queue_index };
	__u32 i;

	bpf_loop(24, agg_cb, &a, 0);
	if (a.in.hits > 3)
		sink += a.in.hits;
	if (a.maxv > 20)
		sink += a.maxv;
#pragma clang loop unroll(disable)
	for (i = 0; i < a.seen && i < 32; i++)
		sink += i;
	return XDP_PASS;
}

/* ---- bpf_for_each_map_elem with a stack ctx ------------------------------ */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} vals SEC(".maps");

struct each_ctx {
	__u64 total;
	__u32 count;
	__u32 big;
};

static __u64 each_cb(void *map, __u32 *key, __u64 *val, struct each_ctx *c)
{
	c->total += *val;
	if (*val > 100)
		c->big++;
	c->count++;
	return 0;
}

SEC("tc")
int each_ctx(struct __sk_buff *skb)
{
	struct each_ctx c = {};
	__u32 i;

	bpf_for_each_map_elem(&vals, each_cb, &c, 0);
	if (c.big)
		sink += c.total;
#pragma clang loop unroll(disable)
	for (i = 0; i < c.count && i < 16; i++)
		sink += i;
	return 0;
}

/* ---- a map value the callback reaches through a pointer in ctx ----------- */
struct counters {
	__u64 n;
	__u64 steps;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counters);
} counts SEC(".maps");

struct counters_ref {
	struct counters *c; /* ctx itself must be a stack pointer (or NULL) */
};

static int count_cb(__u32 idx, struct counters_ref *ref)
{
	ref->c->n += idx;
	ref->c->steps++;
	return 0;
}

SEC("xdp")
int loop_mapval(struct xdp_md *ctx)
{
	__u32 key = 0, i;
	struct counters_ref ref;

	ref.c = bpf_map_lookup_elem(&counts, &key);
	if (!ref.c)
		return XDP_PASS;
	ref.c->steps = 0;
	bpf_loop(ctx->rx_queue_index & 7, count_cb, &ref, 0);
#pragma clang loop unroll(disable)
	for (i = 0; i < ref.c->steps && i < 12; i++)
		sink += i;
	return XDP_PASS;
}

/* ---- the callback stops on what earlier iterations wrote ------------------ */
struct budget {
	__u64 allowed;
	__u64 used;
};

static int spend_cb(__u32 idx, struct budget *b)
{
	if (b->used >= b->allowed)
		return 1;
	b->used += idx + 1;
	return 0;
}

SEC("xdp")
int loop_stop(struct xdp_md *ctx)
{
	struct budget b = { .allowed = ctx->rx_queue_index, .used = 0 };
	__u32 i;

	bpf_loop(64, spend_cb, &b, 0);
#pragma clang loop unroll(disable)
	for (i = 0; i < b.used && i < 40; i++)
		sink += i;
	return XDP_PASS;
}

/* ---- a pointer stored in ctx: the callback writes through it ------------- */
struct holder {
	__u64 *out;
	__u64 tag;
};

static int via_cb(__u32 idx, struct holder *h)
{
	*h->out += idx;
	return 0;
}

SEC("xdp")
int loop_via_ptr(struct xdp_md *ctx)
{
	struct holder h; /* declared first: clang puts it above total */
	__u64 total = 0;
	__u32 i;

	h.out = &total;
	h.tag = 1;

	bpf_loop(ctx->rx_queue_index & 15, via_cb, &h, 0);
#pragma clang loop unroll(disable)
	for (i = 0; i < total && i < 40; i++)
		sink += i;
	return XDP_PASS;
}

/* ---- the caller writes through a pointer the callback may have replaced ---- */
SEC("xdp")
int loop_then_store(struct xdp_md *ctx)
{
	struct holder h; /* declared first: clang puts it above total */
	__u64 total = 0;
	__u32 i;

	h.out = &total;
	h.tag = 3;
	bpf_loop(ctx->rx_queue_index & 3, via_cb, &h, 0);
	total = 0;
	*h.out = ctx->rx_queue_index & 31; /* h.out is reloaded: the callback had &h */
#pragma clang loop unroll(disable)
	for (i = 0; i < total && i < 40; i++)
		sink += i;
	return XDP_PASS;
}

/* ---- a pointer to the stack or to a map value, chosen at run time ---------- */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} slot SEC(".maps");

SEC("xdp")
int store_joined_ptr(struct xdp_md *ctx)
{
	__u32 key = 0, i;
	volatile __u64 local = 0; /* volatile: kept on the stack, read back */
	__u64 *v = bpf_map_lookup_elem(&slot, &key);
	volatile __u64 *p;

	if (!v)
		return XDP_PASS;
	p = (ctx->rx_queue_index & 1) ? &local : (volatile __u64 *)v;
	*p = ctx->rx_queue_index & 31;
#pragma clang loop unroll(disable)
	for (i = 0; i < local && i < 40; i++)
		sink += i;
	return XDP_PASS;
}

/* ---- container_of: the callback writes below the pointer it got ---------- */
struct outer {
	__u64 count;
	__u64 flag;
};

static int member_cb(__u32 idx, __u64 *flagp)
{
	struct outer *o = (struct outer *)((char *)flagp - __builtin_offsetof(struct outer, flag));

	o->count += idx;
	return 0;
}

SEC("xdp")
int loop_container_of(struct xdp_md *ctx)
{
	struct outer o = { .count = 0, .flag = 1 };
	__u32 i;

	bpf_loop(ctx->rx_queue_index & 15, member_cb, &o.flag, 0);
#pragma clang loop unroll(disable)
	for (i = 0; i < o.count && i < 40; i++)
		sink += i;
	return XDP_PASS;
}

/* ---- bpf_find_vma and bpf_user_ringbuf_drain with a written ctx ----------- */
struct vma_ctx {
	__u64 hits;
};

__u64 addr_to_find;

static long vma_cb(struct task_struct *task, struct vm_area_struct *vma, struct vma_ctx *c)
{
	c->hits = 7; /* (+= 5 would not converge in the verifier) */
	return 0;
}

SEC("perf_event")
int vma_hits(void *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct vma_ctx c = { .hits = 0 };
	__u32 i;

	bpf_find_vma(task, addr_to_find, vma_cb, &c, 0);
#pragma clang loop unroll(disable)
	for (i = 0; i < c.hits && i < 10; i++)
		sink += i;
	return 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 4096);
} user_rb SEC(".maps");

struct drain_ctx {
	__u64 count;
};

static long drain_cb(struct bpf_dynptr *dynptr, struct drain_ctx *c)
{
	if (c->count < 9) /* saturating: the verifier's states converge */
		c->count++;
	return 0;
}

SEC("syscall")
int drain_count(void *ctx)
{
	struct drain_ctx c = { .count = 0 };
	__u32 i;

	bpf_user_ringbuf_drain(&user_rb, drain_cb, &c, 0);
#pragma clang loop unroll(disable)
	for (i = 0; i < c.count && i < 10; i++)
		sink += i;
	return 0;
}

/* ---- a timer callback writes a map value the arming program reads ---------- */
#define CLOCK_MONOTONIC 1

struct tval {
	struct bpf_timer t;
	__u64 fired;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tval);
} tmap SEC(".maps");

static int timer_cb(void *map, __u32 *key, struct tval *v)
{
	v->fired += 3; /* runs later, on its own: not on arm_then_read's path */
	return 0;
}

SEC("tc")
int arm_then_read(struct __sk_buff *skb)
{
	__u32 key = 0, i;
	struct tval *v = bpf_map_lookup_elem(&tmap, &key);

	if (!v)
		return 0;
	bpf_timer_init(&v->t, &tmap, CLOCK_MONOTONIC);
	bpf_timer_set_callback(&v->t, timer_cb);
	bpf_timer_start(&v->t, 1000, 0);
#pragma clang loop unroll(disable)
	for (i = 0; i < v->fired && i < 12; i++) /* what earlier firings wrote */
		sink += i;
	return 0;
}

/* ---- bpf-to-bpf calls writing through a pointer argument ------------------ */
static __noinline void put(__u64 *out, __u32 x)
{
	*out = x * 3;
}

static __noinline void put_via(struct holder *h, __u32 x)
{
	*h->out = x * 3;
}

SEC("xdp")
int call_put(struct xdp_md *ctx)
{
	__u64 v = 0;
	__u32 i;

	put(&v, ctx->rx_queue_index & 15);
#pragma clang loop unroll(disable)
	for (i = 0; i < v && i < 50; i++)
		sink += i;
	return XDP_PASS;
}

SEC("xdp")
int call_put_via(struct xdp_md *ctx)
{
	struct holder h; /* declared first: clang puts it above v */
	__u64 v = 0;
	__u32 i;

	h.out = &v;
	h.tag = 2;

	put_via(&h, ctx->rx_queue_index & 15);
#pragma clang loop unroll(disable)
	for (i = 0; i < v && i < 50; i++)
		sink += i;
	return XDP_PASS;
}

/* ---- a slot that held a pointer, reused for data a callee writes ----------- */
static __noinline void fill(__u64 *n, __u32 x)
{
	*n = x;
}

static __noinline void use(struct holder *h)
{
	*h->out = 1;
}

/* clang gives h (dead after use) and n one slot: h.out's pointer, then n */
SEC("xdp")
int reused_slot(struct xdp_md *ctx)
{
	__u64 t = 0;
	__u32 i;

	{
		struct holder h;

		h.out = &t;
		h.tag = 0;
		use(&h);
	}
	sink += t;
	{
		__u64 n;

		fill(&n, ctx->rx_queue_index);
		if (n > 30)
			return XDP_DROP;
#pragma clang loop unroll(disable)
		for (i = 0; i < n; i++)
			sink += i;
	}
	return XDP_PASS;
}

SEC("xdp")
int reused_slot_mask(struct xdp_md *ctx)
{
	__u64 t = 0;
	__u32 i;

	{
		struct holder h;

		h.out = &t;
		h.tag = 0;
		use(&h);
	}
	sink += t;
	{
		__u64 n;

		fill(&n, ctx->rx_queue_index);
		n &= 15;
#pragma clang loop unroll(disable)
		for (i = 0; i < n; i++)
			sink += i;
	}
	return XDP_PASS;
}

static __noinline void count_to(__u64 n)
{
	__u32 i;

	n &= 31;
#pragma clang loop unroll(disable)
	for (i = 0; i < n; i++)
		sink += i;
}

/* as reused_slot, n handed on to a subprogram that bounds its loop by it */
SEC("xdp")
int reused_slot_call(struct xdp_md *ctx)
{
	__u64 t = 0;

	{
		struct holder h;

		h.out = &t;
		h.tag = 0;
		use(&h);
	}
	sink += t;
	{
		__u64 n;

		fill(&n, ctx->rx_queue_index);
		count_to(n);
	}
	return XDP_PASS;
}
