"""Helper arguments that are a (buffer, size) pair, and the kernel limits on them.

From the kernel's ``bpf_func_proto`` definitions: an ``ARG_PTR_TO_MEM`` or
``ARG_PTR_TO_UNINIT_MEM`` argument followed by an ``ARG_CONST_SIZE`` or
``ARG_CONST_SIZE_OR_ZERO`` one. The verifier (``check_mem_size_reg``) refuses a
size whose upper bound it cannot prove below ``BPF_MAX_VAR_SIZ``, then
(``check_helper_mem_access``) one that does not fit in the memory the pointer
argument points at: the stack from the pointer to the frame's top, the map value,
the packet range proven against ``data_end``, the ring-buffer record, ... A
program that loads therefore never passes a size above its buffer.
"""

from __future__ import annotations

from bpflint.isa.helper_ids import HELPER_NAMES

# include/linux/bpf_verifier.h: a size argument's umax must stay below this
BPF_MAX_VAR_SIZ = 1 << 29
# include/linux/filter.h: one frame's stack (and the whole call chain's)
MAX_BPF_STACK = 512
# kernel/bpf/verifier.c find_good_pkt_pointers: a packet pointer's proven range
# is its offset (+1 for a "<" compare), and only offsets up to MAX_PACKET_OFF count
MAX_PACKET_RANGE = 0xFFFF + 1
# the largest context a helper may read through a ctx pointer: the syscall program
# type's (syscall_prog_is_valid_access: off < U16_MAX); the other types that allow
# it (kprobe, tracepoint, raw_tp, perf_event) have smaller ones
MAX_CTX_BYTES = 0xFFFF

# helper name -> ((pointer register, size register), ...), registers r1..r5
SIZED_ARGS: dict[str, tuple[tuple[int, int], ...]] = {
    "probe_read": ((1, 2),),
    "trace_printk": ((1, 2),),
    "skb_store_bytes": ((3, 4),),
    "get_current_comm": ((1, 2),),
    "skb_get_tunnel_key": ((2, 3),),
    "skb_set_tunnel_key": ((2, 3),),
    "perf_event_output": ((4, 5),),
    "skb_load_bytes": ((3, 4),),
    "csum_diff": ((1, 2), (3, 4)),
    "skb_get_tunnel_opt": ((2, 3),),
    "skb_set_tunnel_opt": ((2, 3),),
    "probe_write_user": ((2, 3),),
    "probe_read_str": ((1, 2),),
    "setsockopt": ((4, 5),),
    "perf_event_read_value": ((3, 4),),
    "perf_prog_read_value": ((2, 3),),
    "getsockopt": ((4, 5),),
    "bind": ((2, 3),),
    "skb_get_xfrm_state": ((3, 4),),
    "get_stack": ((2, 3),),
    "skb_load_bytes_relative": ((3, 4),),
    "fib_lookup": ((2, 3),),
    "lwt_push_encap": ((3, 4),),
    "lwt_seg6_store_bytes": ((3, 4),),
    "lwt_seg6_action": ((3, 4),),
    "sk_lookup_tcp": ((2, 3),),
    "sk_lookup_udp": ((2, 3),),
    "skc_lookup_tcp": ((2, 3),),
    "tcp_check_syncookie": ((2, 3), (4, 5)),
    "sysctl_get_name": ((2, 3),),
    "sysctl_get_current_value": ((2, 3),),
    "sysctl_get_new_value": ((2, 3),),
    "sysctl_set_new_value": ((2, 3),),
    "strtol": ((1, 2),),
    "strtoul": ((1, 2),),
    "tcp_gen_syncookie": ((2, 3), (4, 5)),
    "skb_output": ((4, 5),),
    "probe_read_user": ((1, 2),),
    "probe_read_kernel": ((1, 2),),
    "probe_read_user_str": ((1, 2),),
    "probe_read_kernel_str": ((1, 2),),
    "read_branch_records": ((2, 3),),
    "get_ns_current_pid_tgid": ((3, 4),),
    "xdp_output": ((4, 5),),
    "seq_printf": ((2, 3), (4, 5)),
    "seq_write": ((2, 3),),
    "ringbuf_output": ((2, 3),),
    "get_task_stack": ((2, 3),),
    "load_hdr_opt": ((2, 3),),
    "store_hdr_opt": ((2, 3),),
    "d_path": ((2, 3),),
    "copy_from_user": ((1, 2),),
    "snprintf_btf": ((1, 2), (3, 4)),
    "seq_printf_btf": ((2, 3),),
    "redirect_neigh": ((2, 3),),
    "ima_inode_hash": ((2, 3),),
    "snprintf": ((1, 2), (4, 5)),
    "sys_bpf": ((2, 3),),
    "btf_find_by_name_kind": ((1, 2),),
    "get_branch_snapshot": ((1, 2),),
    "trace_vprintk": ((1, 2), (3, 4)),
    "kallsyms_lookup_name": ((1, 2),),
    "strncmp": ((1, 2),),
    "xdp_load_bytes": ((3, 4),),
    "xdp_store_bytes": ((3, 4),),
    "copy_from_user_task": ((1, 2),),
    "ima_file_hash": ((2, 3),),
    "dynptr_from_mem": ((1, 2),),
    "dynptr_read": ((1, 2),),
    "dynptr_write": ((3, 4),),
    "tcp_raw_gen_syncookie_ipv4": ((2, 3),),
    "tcp_raw_gen_syncookie_ipv6": ((2, 3),),
}

# Output helpers that also copy packet bytes: the upper 32 bits of their flags
# argument (r3), masked by BPF_F_CTXLEN_MASK, are a second length (bytes of the
# skb or xdp buffer appended to the record; the kernel refuses more than the
# packet holds, but bpflint does not know how much that is).
CTXLEN_FLAGS_HELPERS = frozenset({"perf_event_output", "skb_output", "xdp_output"})
CTXLEN_MASK_BITS = 0xFFFFF  # BPF_F_CTXLEN_MASK >> 32

# Helpers whose work on some paths is less than their size: a string copy stops at
# the terminating NUL; ringbuf_output fails on a full ring and perf_event_output on
# a slot with no event before copying; csum_diff and skb_store_bytes check their
# arguments first. Their best case is priced at no bytes.
MAY_STOP_EARLY = frozenset({
    "probe_read_str", "probe_read_user_str", "probe_read_kernel_str", "ringbuf_output",
    "perf_event_output", "skb_output", "xdp_output", "csum_diff", "skb_store_bytes",
    "xdp_store_bytes", "xdp_load_bytes",
})

SIZED_ARGS_BY_ID: dict[int, tuple[tuple[int, int], ...]] = {
    HELPER_NAMES.index(name): pairs for name, pairs in SIZED_ARGS.items()
}
