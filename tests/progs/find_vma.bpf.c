// bpf_find_vma: look up the VMA holding the current user stack pointer.
#include "common.h"

struct vma_ctx {
	__u64 hits;
};

__u64 found;
__u64 addr_to_find;

static long vma_cb(struct task_struct *task, struct vm_area_struct *vma, struct vma_ctx *c)
{
	c->hits++;
	return 0;
}

SEC("perf_event")
int find_vma_prog(void *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct vma_ctx c = { .hits = 0 };

	if (bpf_find_vma(task, addr_to_find, vma_cb, &c, 0) == 0)
		found += c.hits;
	return 0;
}
