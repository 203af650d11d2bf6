// Sized helpers whose length is checked through a copy of its register: the
// verifier links the two (reg->id) and so does bpflint's value analysis. Built with
// -DSLACK=1 every check allows one byte more than the buffer holds, and the verifier
// must reject every program: the buffer is exactly what the kernel lets through
// (tests/test_sized_helpers.py). The *_tight programs check less than their buffer
// holds (priced at the check, through the link); the *_unlinked ones break the link
// before the check (the kernel refuses them: nothing bounds the length) and the
// *_joined one links on each path with a different copy, which the kernel follows
// path by path and bpflint's join does not: only the buffer bounds those.
#include "common.h"

#ifndef SLACK
#define SLACK 0
#endif

#define BIG_VALUE_BYTES (128 * 1024)

struct big {
	char data[BIG_VALUE_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct big);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(max_entries, 128);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} samples SEC(".maps");

/* probe_read_kernel(buf, n, src): n checked through the copy in r4 */
SEC("raw_tp/sys_enter")
int read_kernel_copy(struct bpf_raw_tracepoint_args *ctx)
{
	char buf[64];

	asm volatile("r2 = %[n];"
		     "r4 = r2;"
		     "if r4 > %[lim] goto +3;"
		     "r1 = %[buf];"
		     "r3 = %[src];"
		     "call %[helper];"
		     :
		     : [n] "r"(ctx->args[1]), [src] "r"(ctx->args[0]), [buf] "r"(buf),
		       [lim] "i"(sizeof(buf) + SLACK), [helper] "i"(BPF_FUNC_probe_read_kernel)
		     : "r0", "r1", "r2", "r3", "r4", "r5", "memory");
	return 0;
}

/* probe_read_user_str into a 128 KiB map value: bounded by the value only */
SEC("raw_tp/sys_enter")
int read_user_str_value(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 zero = 0;
	struct big *value = bpf_map_lookup_elem(&scratch, &zero);

	if (!value)
		return 0;
	asm volatile("r2 = %[n];"
		     "r4 = r2;"
		     "if r4 > %[lim] goto +3;"
		     "r1 = %[dst];"
		     "r3 = %[src];"
		     "call %[helper];"
		     :
		     : [n] "r"(ctx->args[1]), [src] "r"(ctx->args[0]), [dst] "r"(value->data),
		       [lim] "i"(BIG_VALUE_BYTES + SLACK),
		       [helper] "i"(BPF_FUNC_probe_read_user_str)
		     : "r0", "r1", "r2", "r3", "r4", "r5", "memory");
	return 0;
}

struct page {
	char data[4096];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct page);
} pages SEC(".maps");

/* probe_read_kernel 1000 bytes into a map value: 3096 bytes are left past it */
SEC("raw_tp/sys_enter")
int read_value_offset(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 zero = 0;
	struct page *value = bpf_map_lookup_elem(&pages, &zero);

	if (!value)
		return 0;
	asm volatile("r2 = %[n];"
		     "r4 = r2;"
		     "if r4 > %[lim] goto +3;"
		     "r1 = %[dst];"
		     "r3 = %[src];"
		     "call %[helper];"
		     :
		     : [n] "r"(ctx->args[1]), [src] "r"(ctx->args[0]), [dst] "r"(&value->data[1000]),
		       [lim] "i"(sizeof(value->data) - 1000 + SLACK),
		       [helper] "i"(BPF_FUNC_probe_read_kernel)
		     : "r0", "r1", "r2", "r3", "r4", "r5", "memory");
	return 0;
}

/* ringbuf_output(&events, buf, n, 0) */
SEC("raw_tp/sys_enter")
int ringbuf_output_copy(struct bpf_raw_tracepoint_args *ctx)
{
	char buf[48];

	__builtin_memset(buf, 0, sizeof(buf));
	asm volatile("r3 = %[n];"
		     "r4 = r3;"
		     "if r4 > %[lim] goto +4;"
		     "r1 = %[map];"
		     "r2 = %[buf];"
		     "r4 = 0;"
		     "call %[helper];"
		     :
		     : [n] "r"(ctx->args[1]), [map] "r"(&events), [buf] "r"(buf),
		       [lim] "i"(sizeof(buf) + SLACK), [helper] "i"(BPF_FUNC_ringbuf_output)
		     : "r0", "r1", "r2", "r3", "r4", "r5", "memory");
	return 0;
}

/* perf_event_output(ctx, &samples, BPF_F_CURRENT_CPU, buf, n) */
SEC("raw_tp/sys_enter")
int perf_output_copy(struct bpf_raw_tracepoint_args *ctx)
{
	char buf[40];

	__builtin_memset(buf, 0, sizeof(buf));
	asm volatile("r5 = %[n];"
		     "r0 = r5;"
		     "if r0 > %[lim] goto +5;"
		     "r1 = %[ctx];"
		     "r2 = %[map];"
		     "w3 = -1;"
		     "r4 = %[buf];"
		     "call %[helper];"
		     :
		     : [n] "r"(ctx->args[1]), [ctx] "r"(ctx), [map] "r"(&samples), [buf] "r"(buf),
		       [lim] "i"(sizeof(buf) + SLACK), [helper] "i"(BPF_FUNC_perf_event_output)
		     : "r0", "r1", "r2", "r3", "r4", "r5", "memory");
	return 0;
}

/* skb_load_bytes(skb, 0, buf, n) */
SEC("tc")
int skb_load_copy(struct __sk_buff *skb)
{
	char buf[32];
	__u64 n = skb->mark;

	asm volatile("r4 = %[n];"
		     "r5 = r4;"
		     "if r5 == 0 goto +5;"
		     "if r5 > %[lim] goto +4;"
		     "r1 = %[skb];"
		     "r2 = 0;"
		     "r3 = %[buf];"
		     "call %[helper];"
		     :
		     : [n] "r"(n), [skb] "r"(skb), [buf] "r"(buf),
		       [lim] "i"(sizeof(buf) + SLACK), [helper] "i"(BPF_FUNC_skb_load_bytes)
		     : "r0", "r1", "r2", "r3", "r4", "r5", "memory");
	return 0;
}

/* The shapes bpflint's value analysis bounds itself: a mask and a compare. */
SEC("raw_tp/sys_enter")
int read_masked(struct bpf_raw_tracepoint_args *ctx)
{
	char buf[256];
	__u64 n = ctx->args[1];

	n &= 0xff;
	bpf_probe_read_kernel(buf, n, (void *)ctx->args[0]);
	return 0;
}

SEC("raw_tp/sys_enter")
int read_compared(struct bpf_raw_tracepoint_args *ctx)
{
	char buf[100];
	__u64 n = ctx->args[1];

	if (n > sizeof(buf))
		return 0;
	bpf_probe_read_kernel(buf, n, (void *)ctx->args[0]);
	return 0;
}

/* The link, with a check tighter than the buffer: priced at the check */
SEC("raw_tp/sys_enter")
int read_kernel_copy_tight(struct bpf_raw_tracepoint_args *ctx)
{
	char buf[64];

	asm volatile("r2 = %[n];"
		     "r4 = r2;"
		     "if r4 > %[lim] goto +3;"
		     "r1 = %[buf];"
		     "r3 = %[src];"
		     "call %[helper];"
		     :
		     : [n] "r"(ctx->args[1]), [src] "r"(ctx->args[0]), [buf] "r"(buf),
		       [lim] "i"(16 + SLACK), [helper] "i"(BPF_FUNC_probe_read_kernel)
		     : "r0", "r1", "r2", "r3", "r4", "r5", "memory");
	return 0;
}

/* r4 = r2; r4 += 8: linked 8 apart (BPF_ADD_CONST); 8 <= r4 <= 8 + 20: r2 <= 20 */
SEC("raw_tp/sys_enter")
int read_kernel_add_const(struct bpf_raw_tracepoint_args *ctx)
{
	char buf[64];

	asm volatile("r2 = %[n];"
		     "r4 = r2;"
		     "r4 += 8;"
		     "if r4 < 8 goto +4;"
		     "if r4 > %[lim] goto +3;"
		     "r1 = %[buf];"
		     "r3 = %[src];"
		     "call %[helper];"
		     :
		     : [n] "r"(ctx->args[1]), [src] "r"(ctx->args[0]), [buf] "r"(buf),
		       [lim] "i"(8 + 20 + SLACK), [helper] "i"(BPF_FUNC_probe_read_kernel)
		     : "r0", "r1", "r2", "r3", "r4", "r5", "memory");
	return 0;
}

/* w4 = w2 of a u32: linked as r4 = r2 (the upper halves are zero) */
SEC("tc")
int skb_load_wcopy(struct __sk_buff *skb)
{
	char buf[32];

	asm volatile("w4 = *(u32 *)(%[skb] + 8);" /* skb->mark */
		     "w5 = w4;"
		     "if w5 == 0 goto +5;"
		     "if w5 > %[lim] goto +4;"
		     "r1 = %[skb];"
		     "r2 = 0;"
		     "r3 = %[buf];"
		     "call %[helper];"
		     :
		     : [skb] "r"(skb), [buf] "r"(buf),
		       [lim] "i"(12 + SLACK), [helper] "i"(BPF_FUNC_skb_load_bytes)
		     : "r0", "r1", "r2", "r3", "r4", "r5", "memory");
	return 0;
}

/* The copy is shifted before the check: r2 is anything (the kernel refuses it) */
SEC("raw_tp/sys_enter")
int read_kernel_unlinked(struct bpf_raw_tracepoint_args *ctx)
{
	char buf[64];

	asm volatile("r2 = %[n];"
		     "r4 = r2;"
		     "r4 >>= 1;"
		     "if r4 > %[lim] goto +3;"
		     "r1 = %[buf];"
		     "r3 = %[src];"
		     "call %[helper];"
		     :
		     : [n] "r"(ctx->args[1]), [src] "r"(ctx->args[0]), [buf] "r"(buf),
		       [lim] "i"(16 + SLACK), [helper] "i"(BPF_FUNC_probe_read_kernel)
		     : "r0", "r1", "r2", "r3", "r4", "r5", "memory");
	return 0;
}

/* The copy is reloaded before the check: the same value, but not a copy any more */
SEC("raw_tp/sys_enter")
int read_kernel_reloaded(struct bpf_raw_tracepoint_args *ctx)
{
	char buf[64];

	asm volatile("r2 = *(u64 *)(%[ctx] + 8);"
		     "r4 = r2;"
		     "r4 = *(u64 *)(%[ctx] + 8);"
		     "if r4 > %[lim] goto +3;"
		     "r1 = %[buf];"
		     "r3 = %[src];"
		     "call %[helper];"
		     :
		     : [ctx] "r"(ctx), [src] "r"(ctx->args[0]), [buf] "r"(buf),
		       [lim] "i"(16 + SLACK), [helper] "i"(BPF_FUNC_probe_read_kernel)
		     : "r0", "r1", "r2", "r3", "r4", "r5", "memory");
	return 0;
}

/* w4 = w2 of a 64-bit value: the check sees its low half only (the kernel refuses) */
SEC("raw_tp/sys_enter")
int read_kernel_wide_wcopy(struct bpf_raw_tracepoint_args *ctx)
{
	char buf[64];

	asm volatile("r2 = %[n];"
		     "w4 = w2;"
		     "if r4 > %[lim] goto +3;"
		     "r1 = %[buf];"
		     "r3 = %[src];"
		     "call %[helper];"
		     :
		     : [n] "r"(ctx->args[1]), [src] "r"(ctx->args[0]), [buf] "r"(buf),
		       [lim] "i"(16 + SLACK), [helper] "i"(BPF_FUNC_probe_read_kernel)
		     : "r0", "r1", "r2", "r3", "r4", "r5", "memory");
	return 0;
}

/* A copy on each path, checked after they meet: the kernel walks each path with its
 * own link; bpflint joins the two copies' different links to none */
SEC("raw_tp/sys_enter")
int read_user_str_joined(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 zero = 0;
	struct big *value = bpf_map_lookup_elem(&scratch, &zero);

	if (!value)
		return 0;
	asm volatile("r2 = *(u64 *)(%[ctx] + 8);" /* n, linked to nothing yet */
		     "if %[flag] == 0 goto +2;"
		     "r4 = r2;"
		     "goto +1;"
		     "r4 = r2;"
		     "if r4 > %[lim] goto +3;"
		     "r1 = %[dst];"
		     "r3 = %[src];"
		     "call %[helper];"
		     :
		     : [ctx] "r"(ctx), [src] "r"(ctx->args[0]), [dst] "r"(value->data),
		       [flag] "r"(ctx->args[2]), [lim] "i"(BIG_VALUE_BYTES + SLACK),
		       [helper] "i"(BPF_FUNC_probe_read_user_str)
		     : "r0", "r1", "r2", "r3", "r4", "r5", "memory");
	return 0;
}
