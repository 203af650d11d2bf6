"""What the running kernel has loaded: programs, their maps, BTF, links (``audit``).

Everything is read with bpf(): ``BPF_PROG_GET_NEXT_ID`` / ``BPF_PROG_GET_FD_BY_ID`` /
``BPF_OBJ_GET_INFO_BY_FD`` for programs (translated instructions, map ids, BTF id,
func and line info, run-time statistics), the same for maps and BTF objects, and
``BPF_LINK_GET_NEXT_ID`` for where programs are attached. Needs root (CAP_SYS_ADMIN):
the kernel refuses the id walk to anyone else. Nothing is loaded or changed, except
that ``stats_enabled_for`` switches run-time statistics on for as long as it runs.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bpflint.kernel import syscall as sc

# enum bpf_prog_type, by number (the loader's table names them the other way round)
PROG_TYPE_NAMES: dict[int, str] = {number: name for name, number in sc.PROG_TYPES.items()}
PROG_TYPE_NAMES[32] = "netfilter"

STATS_SYSCTL = Path("/proc/sys/kernel/bpf_stats_enabled")

_U64 = ctypes.c_uint64
_U32 = ctypes.c_uint32


class _ProgInfo(ctypes.Structure):  # struct bpf_prog_info (linux/bpf.h, 6.x)
    _fields_ = [
        ("type", _U32), ("id", _U32), ("tag", ctypes.c_uint8 * 8),
        ("jited_prog_len", _U32), ("xlated_prog_len", _U32),
        ("jited_prog_insns", _U64), ("xlated_prog_insns", _U64),
        ("load_time", _U64), ("created_by_uid", _U32), ("nr_map_ids", _U32),
        ("map_ids", _U64), ("name", ctypes.c_char * 16), ("ifindex", _U32),
        ("gpl_compatible", _U32), ("netns_dev", _U64), ("netns_ino", _U64),
        ("nr_jited_ksyms", _U32), ("nr_jited_func_lens", _U32),
        ("jited_ksyms", _U64), ("jited_func_lens", _U64),
        ("btf_id", _U32), ("func_info_rec_size", _U32), ("func_info", _U64),
        ("nr_func_info", _U32), ("nr_line_info", _U32), ("line_info", _U64),
        ("jited_line_info", _U64), ("nr_jited_line_info", _U32),
        ("line_info_rec_size", _U32), ("jited_line_info_rec_size", _U32),
        ("nr_prog_tags", _U32), ("prog_tags", _U64),
        ("run_time_ns", _U64), ("run_cnt", _U64), ("recursion_misses", _U64),
        ("verified_insns", _U32), ("attach_btf_obj_id", _U32), ("attach_btf_id", _U32),
    ]


class _MapInfo(ctypes.Structure):  # struct bpf_map_info
    _fields_ = [
        ("type", _U32), ("id", _U32), ("key_size", _U32), ("value_size", _U32),
        ("max_entries", _U32), ("map_flags", _U32), ("name", ctypes.c_char * 16),
        ("ifindex", _U32), ("btf_vmlinux_value_type_id", _U32),
        ("netns_dev", _U64), ("netns_ino", _U64), ("btf_id", _U32),
        ("btf_key_type_id", _U32), ("btf_value_type_id", _U32), ("btf_vmlinux_id", _U32),
        ("map_extra", _U64),
    ]


class _BtfInfo(ctypes.Structure):  # struct bpf_btf_info
    _fields_ = [("btf", _U64), ("btf_size", _U32), ("id", _U32), ("name", _U64),
                ("name_len", _U32), ("kernel_btf", _U32)]


class _LinkInfo(ctypes.Structure):  # struct bpf_link_info: a header, then a union
    _fields_ = [("type", _U32), ("id", _U32), ("prog_id", _U32), ("pad", _U32),
                ("u", _U64 * 12)]


_LINK_UNION = 16  # byte offset of the union in struct bpf_link_info

# enum bpf_link_type
LINK_RAW_TRACEPOINT, LINK_TRACING, LINK_CGROUP, LINK_ITER, LINK_NETNS, LINK_XDP, \
    LINK_PERF_EVENT, LINK_KPROBE_MULTI, LINK_STRUCT_OPS, LINK_NETFILTER, LINK_TCX, \
    LINK_UPROBE_MULTI, LINK_NETKIT, LINK_SOCKMAP = range(1, 15)
_LINK_TYPE_NAMES = {LINK_RAW_TRACEPOINT: "raw_tracepoint", LINK_TRACING: "tracing",
                    LINK_CGROUP: "cgroup", LINK_ITER: "iter", LINK_NETNS: "netns",
                    LINK_XDP: "xdp", LINK_PERF_EVENT: "perf_event",
                    LINK_KPROBE_MULTI: "kprobe_multi", LINK_STRUCT_OPS: "struct_ops",
                    LINK_NETFILTER: "netfilter", LINK_TCX: "tcx",
                    LINK_UPROBE_MULTI: "uprobe_multi", LINK_NETKIT: "netkit",
                    LINK_SOCKMAP: "sockmap"}
# enum bpf_perf_event_type
_PERF_EVENT_KINDS = {1: "uprobe", 2: "uretprobe", 3: "kprobe", 4: "kretprobe",
                     5: "tracepoint", 6: "event"}
# enum bpf_attach_type in order (linux/bpf.h, 6.x): how links name their hook
_ATTACH_TYPES: tuple[str, ...] = (
    "cgroup_inet_ingress",
    "cgroup_inet_egress",
    "cgroup_inet_sock_create",
    "cgroup_sock_ops",
    "sk_skb_stream_parser",
    "sk_skb_stream_verdict",
    "cgroup_device",
    "sk_msg_verdict",
    "cgroup_inet4_bind",
    "cgroup_inet6_bind",
    "cgroup_inet4_connect",
    "cgroup_inet6_connect",
    "cgroup_inet4_post_bind",
    "cgroup_inet6_post_bind",
    "cgroup_udp4_sendmsg",
    "cgroup_udp6_sendmsg",
    "lirc_mode2",
    "flow_dissector",
    "cgroup_sysctl",
    "cgroup_udp4_recvmsg",
    "cgroup_udp6_recvmsg",
    "cgroup_getsockopt",
    "cgroup_setsockopt",
    "trace_raw_tp",
    "trace_fentry",
    "trace_fexit",
    "modify_return",
    "lsm_mac",
    "trace_iter",
    "cgroup_inet4_getpeername",
    "cgroup_inet6_getpeername",
    "cgroup_inet4_getsockname",
    "cgroup_inet6_getsockname",
    "xdp_devmap",
    "cgroup_inet_sock_release",
    "xdp_cpumap",
    "sk_lookup",
    "xdp",
    "sk_skb_verdict",
    "sk_reuseport_select",
    "sk_reuseport_select_or_migrate",
    "perf_event",
    "trace_kprobe_multi",
    "lsm_cgroup",
    "struct_ops",
    "netfilter",
    "tcx_ingress",
    "tcx_egress",
    "trace_uprobe_multi",
    "cgroup_unix_connect",
    "cgroup_unix_sendmsg",
    "cgroup_unix_recvmsg",
    "cgroup_unix_getpeername",
    "cgroup_unix_getsockname",
    "netkit_primary",
    "netkit_peer",
)


def _attach_name(number: int) -> str:
    return _ATTACH_TYPES[number] if 0 <= number < len(_ATTACH_TYPES) else f"attach#{number}"


@dataclass(frozen=True)
class LoadedMap:
    id: int
    name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    frozen: bool
    # the contents of a frozen, program-read-only one-entry array (global .rodata):
    # what the loader set its constants to; b"" otherwise
    data: bytes = b""


@dataclass(frozen=True)
class LoadedProgram:
    id: int
    name: str
    type: str  # kernel program type name ("xdp", "sched_cls", ...; "type#N" unknown)
    tag: str  # hex, as bpftool shows it
    xlated: bytes  # translated instructions (empty if the kernel hid them)
    jited_bytes: int
    map_ids: tuple[int, ...]
    btf_id: int
    func_info: tuple[tuple[int, int], ...]  # (first instruction, BTF FUNC type id)
    line_info: tuple[tuple[int, int, int, int], ...]  # (insn, file off, line off, line_col)
    run_time_ns: int
    run_cnt: int
    verified_insns: int
    load_time_ns: int  # since boot
    uid: int


@dataclass(frozen=True)
class Link:
    id: int
    prog_id: int
    kind: str  # link type name ("xdp", "tcx", "perf_event", ...)
    target: str  # what it attaches to, for people: "xdp dev veth0", "kprobe do_unlinkat"
    hook: str  # identity of the hook, for summing what it runs: "xdp:veth0"
    section: str  # a libbpf SEC() name of the same attach point, for budget matching


def stats_sysctl_on() -> bool:
    """Whether ``kernel.bpf_stats_enabled`` is on (statistics counted for everyone)."""
    try:
        return STATS_SYSCTL.read_text().strip() not in ("", "0")
    except OSError:
        return False


@contextmanager
def stats_enabled() -> Iterator[None]:
    """Run-time statistics on while inside; the kernel turns them off with the fd
    (unless the sysctl or someone else's fd keeps them on)."""
    fd = sc.enable_stats()
    try:
        yield
    finally:
        sc.close(fd)


def _ids(cmd: int) -> list[int]:
    found: list[int] = []
    next_id = sc.get_next_id(cmd, 0)
    while next_id is not None:
        found.append(next_id)
        next_id = sc.get_next_id(cmd, next_id)
    return found


def program_ids() -> list[int]:
    return _ids(sc.BPF_PROG_GET_NEXT_ID)


def _open(cmd: int, obj_id: int) -> int | None:
    return sc.fd_by_id(cmd, obj_id)


def read_program(prog_id: int, with_code: bool = True) -> LoadedProgram | None:
    """One program's info, translated code, map ids, func and line info; None if it
    was unloaded meanwhile."""
    fd = _open(sc.BPF_PROG_GET_FD_BY_ID, prog_id)
    if fd is None:
        return None
    try:
        head = _ProgInfo()
        sc.obj_get_info(fd, head)
        info = _ProgInfo()
        code = ctypes.create_string_buffer(max(1, head.xlated_prog_len))
        maps = (_U32 * max(1, head.nr_map_ids))()
        func_rec = head.func_info_rec_size or 8
        line_rec = head.line_info_rec_size or 16
        funcs = ctypes.create_string_buffer(max(1, head.nr_func_info * func_rec))
        lines = ctypes.create_string_buffer(max(1, head.nr_line_info * line_rec))
        if with_code:
            info.xlated_prog_len = head.xlated_prog_len
            info.xlated_prog_insns = ctypes.addressof(code)
            info.nr_func_info = head.nr_func_info
            info.func_info_rec_size = func_rec
            info.func_info = ctypes.addressof(funcs)
            info.nr_line_info = head.nr_line_info
            info.line_info_rec_size = line_rec
            info.line_info = ctypes.addressof(lines)
        info.nr_map_ids = head.nr_map_ids
        info.map_ids = ctypes.addressof(maps)
        sc.obj_get_info(fd, info)
    finally:
        sc.close(fd)
    # a program loaded meanwhile with more of something is cut to what was asked for
    nmaps = min(head.nr_map_ids, info.nr_map_ids)
    nfunc = min(head.nr_func_info, info.nr_func_info) if with_code else 0
    nline = min(head.nr_line_info, info.nr_line_info) if with_code else 0
    xlated = code.raw[:min(head.xlated_prog_len, info.xlated_prog_len)] if with_code else b""
    func_info = tuple(struct.unpack_from("<II", funcs.raw, i * func_rec)
                      for i in range(nfunc))
    line_info = tuple(struct.unpack_from("<IIII", lines.raw, i * line_rec)
                      for i in range(nline))
    return LoadedProgram(
        id=int(info.id), name=info.name.decode(errors="replace"),
        type=PROG_TYPE_NAMES.get(int(info.type), f"type#{info.type}"),
        tag=bytes(info.tag).hex(), xlated=xlated, jited_bytes=int(info.jited_prog_len),
        map_ids=tuple(int(maps[i]) for i in range(nmaps)), btf_id=int(info.btf_id),
        func_info=func_info, line_info=line_info,
        run_time_ns=int(info.run_time_ns), run_cnt=int(info.run_cnt),
        verified_insns=int(info.verified_insns), load_time_ns=int(info.load_time),
        uid=int(info.created_by_uid))


def run_stats(prog_id: int) -> tuple[int, int] | None:
    """(run_time_ns, run_cnt) of a program now; None if it is gone."""
    got = read_program(prog_id, with_code=False)
    return (got.run_time_ns, got.run_cnt) if got is not None else None


def read_map(map_id: int) -> LoadedMap | None:
    fd = _open(sc.BPF_MAP_GET_FD_BY_ID, map_id)
    if fd is None:
        return None
    try:
        info = _MapInfo()
        sc.obj_get_info(fd, info)
        frozen = _fdinfo_flag(fd, "frozen")
        data = b""
        # a global-data .rodata map: one entry, read-only for programs, frozen by the
        # loader; its bytes are the constants the program was loaded with
        if info.type == sc.MAP_TYPES["array"] and info.max_entries == 1 and frozen \
                and info.map_flags & sc.BPF_F_RDONLY_PROG and info.value_size <= 1 << 20:
            try:
                data = sc.map_lookup(fd, bytes(4), int(info.value_size))
            except sc.BpfSyscallError:
                data = b""
    finally:
        sc.close(fd)
    return LoadedMap(id=int(info.id), name=info.name.decode(errors="replace"),
                     type=int(info.type), key_size=int(info.key_size),
                     value_size=int(info.value_size), max_entries=int(info.max_entries),
                     flags=int(info.map_flags), frozen=frozen, data=data)


MAX_PROG_ARRAY_SLOTS = 1 << 16  # slots read per prog array (Cilium's are a few hundred)


def prog_array_entries(map_id: int, max_entries: int) -> tuple[tuple[int, int], ...]:
    """(slot, program id) of every filled slot of a prog array, as it is now (a lookup
    from user space answers the program's id)."""
    fd = _open(sc.BPF_MAP_GET_FD_BY_ID, map_id)
    if fd is None:
        return ()
    found = []
    try:
        for slot in range(min(max_entries, MAX_PROG_ARRAY_SLOTS)):
            try:
                value = sc.map_lookup(fd, struct.pack("<I", slot), 4)
            except sc.BpfSyscallError:
                continue  # an empty slot (ENOENT)
            found.append((slot, struct.unpack("<I", value)[0]))
    finally:
        sc.close(fd)
    return tuple(found)


def _fdinfo_flag(fd: int, key: str) -> bool:
    try:
        text = Path(f"/proc/self/fdinfo/{fd}").read_text()
    except OSError:
        return False
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == key:
            return value.strip() not in ("", "0")
    return False


MAX_BTF_BYTES = 16 << 20  # as the object reader's default limit


def read_btf(btf_id: int) -> bytes | None:
    """The raw BTF blob a program was loaded with; None if absent or too large."""
    if not btf_id:
        return None
    fd = _open(sc.BPF_BTF_GET_FD_BY_ID, btf_id)
    if fd is None:
        return None
    try:
        head = _BtfInfo()
        sc.obj_get_info(fd, head)
        if head.btf_size > MAX_BTF_BYTES:
            return None
        buf = ctypes.create_string_buffer(max(1, head.btf_size))
        info = _BtfInfo(btf=ctypes.addressof(buf), btf_size=head.btf_size)
        sc.obj_get_info(fd, info)
    finally:
        sc.close(fd)
    return buf.raw[:min(head.btf_size, info.btf_size)]


def links() -> list[Link]:
    """Every BPF link: which program it attaches where."""
    found: list[Link] = []
    for link_id in _ids(sc.BPF_LINK_GET_NEXT_ID):
        got = read_link(link_id)
        if got is not None:
            found.append(got)
    return found


def read_link(link_id: int) -> Link | None:
    fd = _open(sc.BPF_LINK_GET_FD_BY_ID, link_id)
    if fd is None:
        return None
    try:
        head = _LinkInfo()
        sc.obj_get_info(fd, head)
        name = ctypes.create_string_buffer(256)
        info = _LinkInfo()
        # the union's name pointer and length sit where each link type keeps them
        words = _name_slot(int(head.type), bytes(head)[_LINK_UNION:])
        if words is not None:
            ptr_at, len_at = words
            struct.pack_into("<Q", info, _LINK_UNION + ptr_at, ctypes.addressof(name))
            struct.pack_into("<I", info, _LINK_UNION + len_at, len(name))
            if head.type == LINK_PERF_EVENT:  # the kernel reads the event type back
                struct.pack_into("<I", info, _LINK_UNION, struct.unpack_from(
                    "<I", bytes(head), _LINK_UNION)[0])
            sc.obj_get_info(fd, info)
        else:
            info = head
    finally:
        sc.close(fd)
    text = name.value.decode(errors="replace")
    return _describe_link(int(info.id), int(info.prog_id), int(info.type),
                          bytes(info)[_LINK_UNION:], text)


def _name_slot(link_type: int, union: bytes) -> tuple[int, int] | None:
    """(offset of the name pointer, offset of its length) in the union, if it has one."""
    if link_type == LINK_RAW_TRACEPOINT:
        return (0, 8)
    if link_type == LINK_ITER:
        return (0, 8)
    if link_type == LINK_PERF_EVENT:
        kind = _PERF_EVENT_KINDS.get(struct.unpack_from("<I", union, 0)[0], "")
        if kind in ("uprobe", "uretprobe", "kprobe", "kretprobe", "tracepoint"):
            return (8, 16)
    return None


def _ifname(ifindex: int) -> str:
    try:
        return socket.if_indextoname(ifindex)
    except OSError:  # in another network namespace, or gone
        return f"ifindex {ifindex}"


def _describe_link(link_id: int, prog_id: int, link_type: int, union: bytes,
                   name: str) -> Link:
    kind = _LINK_TYPE_NAMES.get(link_type, f"link#{link_type}")
    u32 = struct.unpack_from("<12I", union, 0)
    if link_type == LINK_XDP:
        dev = _ifname(u32[0])
        return Link(link_id, prog_id, kind, f"xdp dev {dev}", f"xdp:{dev}", "xdp")
    if link_type in (LINK_TCX, LINK_NETKIT):
        dev = _ifname(u32[0])
        where = _attach_name(u32[1])
        direction = where.split("_", 1)[1]
        return Link(link_id, prog_id, kind, f"{kind} {direction} dev {dev}",
                    f"{kind}:{dev}:{direction}", f"{kind}/{direction}")
    if link_type == LINK_RAW_TRACEPOINT:
        return Link(link_id, prog_id, kind, f"raw_tracepoint {name}", f"raw_tp:{name}",
                    f"raw_tp/{name}")
    if link_type == LINK_PERF_EVENT:
        perf = _PERF_EVENT_KINDS.get(u32[0], "perf_event")
        if perf in ("kprobe", "kretprobe"):
            hook = f"kprobe:{name}"  # entry and return probes run on the same call
            return Link(link_id, prog_id, kind, f"{perf} {name}", hook, f"{perf}/{name}")
        if perf == "tracepoint":
            return Link(link_id, prog_id, kind, f"tracepoint {name}", f"tracepoint:{name}",
                        f"tracepoint/{name}")
        if perf in ("uprobe", "uretprobe"):
            offset = u32[5]
            return Link(link_id, prog_id, kind, f"{perf} {name}+{offset:#x}",
                        f"uprobe:{name}:{offset:#x}", f"{perf}/{name}")
        return Link(link_id, prog_id, kind, "perf event", f"perf_event:{link_id}",
                    "perf_event")
    if link_type == LINK_TRACING:
        attach = _attach_name(u32[0])
        verb = attach.removeprefix("trace_")
        return Link(link_id, prog_id, kind, f"{verb} btf_id {u32[2]}",
                    f"tracing:{u32[1]}:{u32[2]}", verb)
    if link_type == LINK_CGROUP:
        cgroup_id = struct.unpack_from("<Q", union, 0)[0]
        attach = _attach_name(u32[2])
        return Link(link_id, prog_id, kind, f"{attach} cgroup {cgroup_id}",
                    f"cgroup:{cgroup_id}:{attach}", attach.removeprefix("cgroup_"))
    if link_type == LINK_KPROBE_MULTI:
        return Link(link_id, prog_id, kind, f"kprobe.multi ({u32[2]} functions)",
                    f"kprobe_multi:{link_id}", "kprobe.multi")
    if link_type == LINK_ITER:
        return Link(link_id, prog_id, kind, f"iter {name}", f"iter:{name}", f"iter/{name}")
    if link_type == LINK_NETFILTER:
        return Link(link_id, prog_id, kind, f"netfilter pf {u32[0]} hook {u32[1]}",
                    f"netfilter:{u32[0]}:{u32[1]}", "netfilter")
    return Link(link_id, prog_id, kind, kind, f"{kind}:{link_id}", kind)


_XDP_MODES = {1: "driver", 2: "generic", 3: "offload"}


def netlink_xdp() -> list[Link]:
    """XDP programs attached through netlink (``ip link set dev X xdp ...``, most
    loaders before links), which no BPF link lists: from ``ip -j -d link show``, in
    this network namespace. Empty when iproute2 is missing or says nothing usable."""
    ip = shutil.which("ip")
    if ip is None:
        return []
    try:
        done = subprocess.run([ip, "-j", "-d", "link", "show"], capture_output=True,
                              text=True, timeout=10, check=False)
        devices = json.loads(done.stdout) if done.returncode == 0 else []
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
    found: list[Link] = []
    for device in devices if isinstance(devices, list) else []:
        xdp = device.get("xdp") if isinstance(device, dict) else None
        if not isinstance(xdp, dict):
            continue
        name = str(device.get("ifname", "?"))
        attached = xdp.get("attached")
        entries = attached if isinstance(attached, list) else [xdp]
        for entry in entries:
            prog = entry.get("prog") if isinstance(entry, dict) else None
            if isinstance(prog, dict) and isinstance(prog.get("id"), int):
                number = entry.get("mode", xdp.get("mode"))
                mode = _XDP_MODES.get(number, "xdp") if isinstance(number, int) else "xdp"
                found.append(Link(0, prog["id"], "netlink", f"xdp dev {name} ({mode})",
                                  f"xdp:{name}", "xdp"))
    return found


def sample(prog_ids: list[int], seconds: float) -> dict[int, tuple[int, int]]:
    """(run_time_ns, run_cnt) each program adds over ``seconds`` with statistics on."""
    with stats_enabled():
        before = {pid: got for pid in prog_ids if (got := run_stats(pid)) is not None}
        time.sleep(seconds)
        after = {pid: got for pid in before if (got := run_stats(pid)) is not None}
    return {pid: (after[pid][0] - before[pid][0], after[pid][1] - before[pid][1])
            for pid in after}


_EMPTY_PROG = bytes.fromhex("b700000002000000" "9500000000000000")  # r0 = XDP_PASS; exit
FLOOR_RUNS = 100_000


def stats_floor_ns() -> float | None:
    """What bpf_stats reports for a program that does nothing (r0 = 2; exit), in ns per
    run: the cost of its own clock reads, which every measured average includes. The
    least of three batches of test runs; None if this kernel cannot test-run XDP."""
    try:
        prog = sc.prog_load(sc.PROG_TYPES["xdp"], _EMPTY_PROG, name="bpflint_floor",
                            log_level=0)
    except sc.BpfSyscallError:
        return None
    try:
        info = _ProgInfo()
        sc.obj_get_info(prog.fd, info)
        best: float | None = None
        with stats_enabled():
            for _ in range(3):
                before = run_stats(int(info.id))
                sc.prog_test_run(prog.fd, data=bytes(64), repeat=FLOOR_RUNS)
                after = run_stats(int(info.id))
                if before is None or after is None or after[1] <= before[1]:
                    return None
                avg = (after[0] - before[0]) / (after[1] - before[1])
                best = avg if best is None else min(best, avg)
        return best
    except sc.BpfSyscallError:
        return None
    finally:
        sc.close(prog.fd)


def is_root() -> bool:
    return os.geteuid() == 0
