// The C fuzzer's string idioms (tests/cgen_idioms.py): a string map value read with
// bpf_probe_read_kernel_str into a per-CPU scratch buffer, its returned length (the NUL
// included) steering a loop, then bpf_strncmp against a constant.
#include "common.h"

#define STR_LEN 32
struct str_val {
	char s[STR_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct str_val);
} strs SEC(".maps");

struct scratch_buf {
	__u8 buf[512];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch_buf);
} scratch SEC(".maps");

const char pat[] = "abc";
const volatile __u8 str_size = STR_LEN; /* the loader's: 0 copies nothing, returns 0 */
__u64 sink;

SEC("raw_tp/sys_enter")
int prog(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 k = 0, zero = 0;
	__u64 acc = 0;
	struct str_val *sv = bpf_map_lookup_elem(&strs, &k);
	struct scratch_buf *sb = bpf_map_lookup_elem(&scratch, &zero);

	if (!sv || !sb)
		return 0;
	long n = bpf_probe_read_kernel_str(sb->buf, STR_LEN, sv->s);
	for (long i = 0; i < n && i < STR_LEN; i++)
		acc += sb->buf[i];
	long m = bpf_probe_read_kernel_str(sb->buf + 64, str_size & 63, sv->s);
	if (bpf_strncmp(sv->s, STR_LEN, pat) == 0)
		n += 100;
	sink = acc;
	return n + ((m & 0xff) << 8);
}
