// The bits iterator: one round per set bit of the words it is given.
#include "common.h"

struct bpf_iter_bits {
	__u64 __opaque[2];
} __attribute__((aligned(8)));

extern int bpf_iter_bits_new(struct bpf_iter_bits *it, const __u64 *unsafe_ptr__ign,
			     __u32 nr_words) __weak __ksym;
extern int *bpf_iter_bits_next(struct bpf_iter_bits *it) __weak __ksym;
extern void bpf_iter_bits_destroy(struct bpf_iter_bits *it) __weak __ksym;

volatile __u64 bit_sum;

/* one round per set bit of the nr_words words at ``words`` */
static __always_inline void sum_bits(const __u64 *words, __u32 nr_words)
{
	struct bpf_iter_bits it;
	int *bit;

	bpf_iter_bits_new(&it, words, nr_words);
	while ((bit = bpf_iter_bits_next(&it)))
		bit_sum += *bit;
	bpf_iter_bits_destroy(&it);
}

/* two words from the context: at most 128 rounds */
SEC("raw_tp/sys_enter")
int iter_bits(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 words[2] = {ctx->args[0], ctx->args[1]};

	sum_bits(words, 2);
	return 0;
}

/* more words than the kernel takes (511): -E2BIG, no round */
SEC("raw_tp/sys_enter")
int iter_bits_too_many(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 words[2] = {ctx->args[0], ctx->args[1]};

	sum_bits(words, 512);
	return 0;
}

/* no words at all: -EINVAL, no round */
SEC("raw_tp/sys_enter")
int iter_bits_null(struct bpf_raw_tracepoint_args *ctx)
{
	sum_bits((void *)0, 2);
	return 0;
}
