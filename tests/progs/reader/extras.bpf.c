// Reader test: a global callback (address relocated against its own symbol),
// string literals and static variables (relocated against section symbols with
// an addend), and a second object for the bpftool linker test.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

static __u64 seen;
static __u64 calls;
static const __u32 steps[3] = {10, 20, 30};

__noinline int global_cb(__u32 index, void *ctx)
{
	calls += steps[index % 3];
	return 0;
}

static __noinline int helper_twice(int x)
{
	seen += x;
	return x * 2;
}

SEC("tp/syscalls/sys_enter_openat")
int trace_openat(void *ctx)
{
	bpf_printk("openat %d", 1);
	bpf_printk("second string %d", 2);
	bpf_loop(3, global_cb, 0, 0);
	return helper_twice((long)ctx & 7) + seen;
}
