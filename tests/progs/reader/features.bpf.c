// Reader test: programs sharing a section, static and global subprograms,
// callbacks (bpf_loop, timers), BTF maps, a statically initialised prog array,
// global data, kfuncs and extern variables.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct elem {
	struct bpf_timer timer;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, int);
	__type(value, struct elem);
} timers SEC(".maps");

const volatile __u32 limit = 7;
const volatile __u64 table[4] = {1, 2, 3, 4};
__u64 hits = 1;
__u64 misses;

extern void bpf_rcu_read_lock(void) __ksym;
extern void bpf_rcu_read_unlock(void) __ksym;
extern const int bpf_prog_active __ksym;
extern int LINUX_KERNEL_VERSION __kconfig;

static __noinline int add_one(int x)
{
	return x + 1;
}

__noinline int global_twice(int x)
{
	return add_one(x) * 2;
}

static int loop_cb(__u32 index, void *ctx)
{
	misses += index;
	return 0;
}

static int timer_cb(void *map, int *key, struct elem *val)
{
	hits++;
	return 0;
}

SEC("kprobe/do_unlinkat")
int probe_a(void *ctx)
{
	__u32 key = 1;
	__u64 *val = bpf_map_lookup_elem(&counts, &key);
	if (val)
		*val += table[2] + limit;
	return global_twice(3);
}

SEC("kprobe/do_unlinkat")
int probe_b(void *ctx)
{
	bpf_loop(limit, loop_cb, 0, 0);
	bpf_rcu_read_lock();
	bpf_rcu_read_unlock();
	return add_one(LINUX_KERNEL_VERSION) + (long)&bpf_prog_active;
}

SEC("tc")
int tc_timer(struct __sk_buff *skb)
{
	int key = 0;
	struct elem *val = bpf_map_lookup_elem(&timers, &key);
	if (!val)
		return 0;
	bpf_timer_init(&val->timer, &timers, 1);
	bpf_timer_set_callback(&val->timer, timer_cb);
	return hits;
}

SEC("xdp")
int tail_target(struct xdp_md *ctx)
{
	return XDP_PASS;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 8);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} jumps SEC(".maps") = {
	.values = {
		[0] = (void *)&tail_target,
		[5] = (void *)&tail_target,
	},
};

SEC("xdp")
int xdp_entry(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &jumps, 5);
	return XDP_DROP;
}
