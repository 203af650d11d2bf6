/* Shared bits of the known-count programs (tests/test_known_counts.py). */
#ifndef BPFLINT_KNOWN_H
#define BPFLINT_KNOWN_H
#include "common.h"

volatile __u64 acc;
volatile __u64 acc2;

/* p = the packet, at least n bytes long, else the program returns XDP_DROP */
#define PKT(n)								\
	void *data = (void *)(long)ctx->data;				\
	void *end = (void *)(long)ctx->data_end;			\
	__u8 *p = data;							\
	if ((void *)(p + (n)) > end)					\
		return XDP_DROP

#define NOUNROLL _Pragma("clang loop unroll(disable)")
#endif
