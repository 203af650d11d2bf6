// bpf_timer: init, set_callback and start; the callback runs asynchronously.
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

static int timer_fired(void *map, __u32 *key, struct tval *v)
{
	int i;

	/* the callback has its own cost, outside the arming program's path */
#pragma clang loop unroll(disable)
	for (i = 0; i < 8; i++)
		timer_acc += i; /* volatile: one round per iteration */
	v->fired++;
	return 0;
}

SEC("tc")
int arm_timer(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct tval *v = bpf_map_lookup_elem(&tmap, &key);

	if (!v)
		return 0;
	bpf_timer_init(&v->t, &tmap, CLOCK_MONOTONIC);
	bpf_timer_set_callback(&v->t, timer_fired);
	bpf_timer_start(&v->t, 1000000, 0);
	return 0;
}
