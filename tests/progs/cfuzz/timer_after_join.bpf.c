// The C fuzzer's seed 40171 (a callback chosen before a join, called after it) for
// bpf_timer_set_callback, written for it: clang merges the two calls, each path
// loading its callback's address into r2 first. The timer callbacks were found by
// looking back from the call to the last write of r2 in its block, which here is in
// neither path's block: neither was reported; the value analysis finds both.
#include "common.h"

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

volatile __u64 timer_acc;

static int slow_fired(void *map, __u32 *key, struct tval *v)
{
#pragma clang loop unroll(disable)
	for (int i = 0; i < 8; i++)
		timer_acc += i;
	v->fired++;
	return 0;
}

static int fast_fired(void *map, __u32 *key, struct tval *v)
{
	v->fired += 2;
	return 0;
}

SEC("tc")
int arm_either(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct tval *v = bpf_map_lookup_elem(&tmap, &key);

	if (!v)
		return 0;
	bpf_timer_init(&v->t, &tmap, CLOCK_MONOTONIC);
	if (skb->mark & 1)
		bpf_timer_set_callback(&v->t, slow_fired);
	else
		bpf_timer_set_callback(&v->t, fast_fired);
	bpf_timer_start(&v->t, 1000000, 0);
	return 0;
}
