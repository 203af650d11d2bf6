// BPF iterator over tasks: writes one line per task with bpf_seq_write.
#include "common.h"

struct bpf_iter_meta;
struct task_struct;

struct iter_task_ctx {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
};

struct bpf_iter_meta_view {
	void *seq;
	__u64 session_id;
	__u64 seq_num;
};

SEC("iter/task")
int iter_task(struct iter_task_ctx *ctx)
{
	struct bpf_iter_meta_view *meta = (void *)ctx->meta;
	char line[8] = "task\n";

	if (!ctx->task) {
		bpf_seq_write(meta->seq, "end\n", 4);
		return 0;
	}
	if (meta->seq_num == 0)
		bpf_seq_write(meta->seq, "tasks:\n", 7);
	bpf_seq_write(meta->seq, line, 5);
	return 0;
}
