"""Program type and attach target from a SEC() name, as libbpf decides them.

The table follows libbpf's ``section_defs`` (src/libbpf.c), in its order, because
libbpf takes the first entry that matches:

* ``"name+"``  matches ``name`` exactly or ``name/<target>``;
* ``"name/"``  matches any section starting with ``name/``;
* ``"name"``   matches only exactly.

libbpf before 1.0 also accepted any section that merely *starts with* an entry's
name (``xdp_prog``, ``socket1``, ``kprobe__foo``); objects built for it still exist,
so when nothing matches strictly the longest such prefix is used and reported as a
legacy match.  Anything else is ``"unknown"``: the program is still analysed.

The map type names (``BPF_MAP_TYPE_*`` lower-cased, prefix dropped) live here too:
like program types they name what an ELF section declares.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SecDef:
    prog_type: str  # libbpf program type name ("xdp", "sched_cls", ...)
    attach: str  # attach target or point named by the section ("" when none)
    sleepable: bool
    legacy: bool = False  # matched only by libbpf < 1.0 prefix rules


# (pattern, program type, sleepable) in libbpf's order
SECTION_DEFS: tuple[tuple[str, str, bool], ...] = (
    ("socket", "socket_filter", False),
    ("sk_reuseport/migrate", "sk_reuseport", False),
    ("sk_reuseport", "sk_reuseport", False),
    ("kprobe+", "kprobe", False),
    ("uprobe+", "kprobe", False),
    ("uprobe.s+", "kprobe", True),
    ("kretprobe+", "kprobe", False),
    ("uretprobe+", "kprobe", False),
    ("uretprobe.s+", "kprobe", True),
    ("kprobe.multi+", "kprobe", False),
    ("kretprobe.multi+", "kprobe", False),
    ("kprobe.session+", "kprobe", False),
    ("uprobe.multi+", "kprobe", False),
    ("uretprobe.multi+", "kprobe", False),
    ("uprobe.session+", "kprobe", False),
    ("uprobe.multi.s+", "kprobe", True),
    ("uretprobe.multi.s+", "kprobe", True),
    ("uprobe.session.s+", "kprobe", True),
    ("ksyscall+", "kprobe", False),
    ("kretsyscall+", "kprobe", False),
    ("usdt+", "kprobe", False),
    ("usdt.s+", "kprobe", True),
    ("tc/ingress", "sched_cls", False),
    ("tc/egress", "sched_cls", False),
    ("tcx/ingress", "sched_cls", False),
    ("tcx/egress", "sched_cls", False),
    ("tc", "sched_cls", False),
    ("classifier", "sched_cls", False),
    ("action", "sched_act", False),
    ("netkit/primary", "sched_cls", False),
    ("netkit/peer", "sched_cls", False),
    ("tracepoint+", "tracepoint", False),
    ("tp+", "tracepoint", False),
    ("tracepoint.s+", "tracepoint", True),
    ("tp.s+", "tracepoint", True),
    ("raw_tracepoint+", "raw_tracepoint", False),
    ("raw_tp+", "raw_tracepoint", False),
    ("raw_tracepoint.s+", "raw_tracepoint", True),
    ("raw_tp.s+", "raw_tracepoint", True),
    ("raw_tracepoint.w+", "raw_tracepoint_writable", False),
    ("raw_tp.w+", "raw_tracepoint_writable", False),
    ("tp_btf+", "tracing", False),
    ("tp_btf.s+", "tracing", True),
    ("fentry+", "tracing", False),
    ("fmod_ret+", "tracing", False),
    ("fexit+", "tracing", False),
    ("fentry.s+", "tracing", True),
    ("fmod_ret.s+", "tracing", True),
    ("fexit.s+", "tracing", True),
    ("fsession+", "tracing", False),
    ("fsession.s+", "tracing", True),
    ("fsession.multi+", "tracing", False),
    ("fsession.multi.s+", "tracing", True),
    ("fentry.multi+", "tracing", False),
    ("fexit.multi+", "tracing", False),
    ("fentry.multi.s+", "tracing", True),
    ("fexit.multi.s+", "tracing", True),
    ("freplace+", "ext", False),
    ("lsm+", "lsm", False),
    ("lsm.s+", "lsm", True),
    ("lsm_cgroup+", "lsm", False),
    ("iter+", "tracing", False),
    ("iter.s+", "tracing", True),
    ("syscall", "syscall", True),
    ("xdp.frags/devmap", "xdp", False),
    ("xdp/devmap", "xdp", False),
    ("xdp.frags/cpumap", "xdp", False),
    ("xdp/cpumap", "xdp", False),
    ("xdp.frags", "xdp", False),
    ("xdp", "xdp", False),
    ("perf_event", "perf_event", False),
    ("lwt_in", "lwt_in", False),
    ("lwt_out", "lwt_out", False),
    ("lwt_xmit", "lwt_xmit", False),
    ("lwt_seg6local", "lwt_seg6local", False),
    ("sockops", "sock_ops", False),
    ("sk_skb/stream_parser", "sk_skb", False),
    ("sk_skb/stream_verdict", "sk_skb", False),
    ("sk_skb/verdict", "sk_skb", False),
    ("sk_skb", "sk_skb", False),
    ("sk_msg", "sk_msg", False),
    ("lirc_mode2", "lirc_mode2", False),
    ("flow_dissector", "flow_dissector", False),
    ("cgroup_skb/ingress", "cgroup_skb", False),
    ("cgroup_skb/egress", "cgroup_skb", False),
    ("cgroup/skb", "cgroup_skb", False),
    ("cgroup/sock_create", "cgroup_sock", False),
    ("cgroup/sock_release", "cgroup_sock", False),
    ("cgroup/sock", "cgroup_sock", False),
    ("cgroup/post_bind4", "cgroup_sock", False),
    ("cgroup/post_bind6", "cgroup_sock", False),
    ("cgroup/bind4", "cgroup_sock_addr", False),
    ("cgroup/bind6", "cgroup_sock_addr", False),
    ("cgroup/connect4", "cgroup_sock_addr", False),
    ("cgroup/connect6", "cgroup_sock_addr", False),
    ("cgroup/connect_unix", "cgroup_sock_addr", False),
    ("cgroup/sendmsg4", "cgroup_sock_addr", False),
    ("cgroup/sendmsg6", "cgroup_sock_addr", False),
    ("cgroup/sendmsg_unix", "cgroup_sock_addr", False),
    ("cgroup/recvmsg4", "cgroup_sock_addr", False),
    ("cgroup/recvmsg6", "cgroup_sock_addr", False),
    ("cgroup/recvmsg_unix", "cgroup_sock_addr", False),
    ("cgroup/getpeername4", "cgroup_sock_addr", False),
    ("cgroup/getpeername6", "cgroup_sock_addr", False),
    ("cgroup/getpeername_unix", "cgroup_sock_addr", False),
    ("cgroup/getsockname4", "cgroup_sock_addr", False),
    ("cgroup/getsockname6", "cgroup_sock_addr", False),
    ("cgroup/getsockname_unix", "cgroup_sock_addr", False),
    ("cgroup/sysctl", "cgroup_sysctl", False),
    ("cgroup/getsockopt", "cgroup_sockopt", False),
    ("cgroup/setsockopt", "cgroup_sockopt", False),
    ("cgroup/dev", "cgroup_device", False),
    ("struct_ops+", "struct_ops", False),
    ("struct_ops.s+", "struct_ops", True),
    ("sk_lookup", "sk_lookup", False),
    ("netfilter", "netfilter", False),
)

UNKNOWN = "unknown"


def _strict_match(pattern: str, name: str) -> str | None:
    """The attach target if ``name`` matches ``pattern`` under libbpf 1.x rules."""
    if pattern.endswith("+"):
        base = pattern[:-1]
        if name == base:
            return ""
        if name.startswith(base + "/"):
            return name[len(base) + 1:]
        return None
    if pattern.endswith("/"):
        return name[len(pattern):] if name.startswith(pattern) else None
    if name != pattern:
        return None
    # "cgroup/sock_create", "tcx/ingress": the part after the type names the hook
    return pattern.split("/", 1)[1] if "/" in pattern else ""


def classify(section: str) -> SecDef:
    """Program type, attach target and sleepability for a SEC() name."""
    # libbpf: a leading '?' only turns autoloading off ("?raw_tp" is a raw_tp program)
    section = section.removeprefix("?")
    for pattern, prog_type, sleepable in SECTION_DEFS:
        attach = _strict_match(pattern, section)
        if attach is not None:
            return SecDef(prog_type, attach, sleepable)
    best: tuple[str, str, bool] | None = None
    for entry in SECTION_DEFS:
        base = entry[0].rstrip("+/")
        if section.startswith(base) and (best is None or len(base) > len(best[0].rstrip("+/"))):
            best = entry
    if best is None:
        return SecDef(UNKNOWN, "", False)
    pattern, prog_type, sleepable = best
    base = pattern.rstrip("+/")
    attach = section[len(base):].lstrip("/") if pattern.endswith("+") else ""
    return SecDef(prog_type, attach, sleepable, legacy=True)


# BPF_MAP_TYPE_* by value (linux/bpf.h), lower-cased without the prefix
MAP_TYPE_NAMES: tuple[str, ...] = (
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
    "arena",
    "insn_array",
)

MAP_TYPE_ARRAY = 2
MAP_TYPE_PROG_ARRAY = 3


def map_type_name(map_type: int) -> str:
    """``"hash"`` for 1 and so on; ``""`` for a value this table does not know."""
    return MAP_TYPE_NAMES[map_type] if 0 <= map_type < len(MAP_TYPE_NAMES) else ""
