// BPF LSM hook: deny opens for one cgroup-less pid range, allow otherwise.
#include "common.h"

const volatile __u32 denied_tgid = 0;

SEC("lsm/file_open")
int lsm_file_open(__u64 *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;

	if (denied_tgid == 0 || tgid != denied_tgid)
		return 0;
	if ((__u32)id == tgid)
		return -1; /* -EPERM for the group leader */
	return -13; /* -EACCES for its threads */
}
