"""The bpf() system call through ctypes: maps, program load, test runs.

Only ``calibrate`` and ``measure`` (and tests) reach this module; the static
analysis never touches the kernel. Each command fills its own ``union bpf_attr``
member as a ctypes structure laid out exactly as in linux/bpf.h; the kernel
accepts a shorter attr as long as the bytes it knows beyond it are zero.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform
import re
from dataclasses import dataclass

from bpflint.errors import BpfLintError

# bpf() command numbers (enum bpf_cmd)
BPF_MAP_CREATE = 0
BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_UPDATE_ELEM = 2
BPF_PROG_LOAD = 5
BPF_PROG_TEST_RUN = 10
BPF_PROG_GET_NEXT_ID = 11
BPF_MAP_GET_NEXT_ID = 12
BPF_PROG_GET_FD_BY_ID = 13
BPF_MAP_GET_FD_BY_ID = 14
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_BTF_LOAD = 18
BPF_BTF_GET_FD_BY_ID = 19
BPF_MAP_FREEZE = 22
BPF_MAP_UPDATE_BATCH = 26
BPF_RAW_TRACEPOINT_OPEN = 17
BPF_LINK_CREATE = 28
BPF_LINK_GET_FD_BY_ID = 30
BPF_LINK_GET_NEXT_ID = 31
BPF_ENABLE_STATS = 32
BPF_STATS_RUN_TIME = 0

# enum bpf_attach_type values the link helpers below use
BPF_XDP = 37
BPF_PERF_EVENT = 41

# log_level bits
BPF_LOG_LEVEL1 = 1
BPF_LOG_LEVEL2 = 2
BPF_LOG_STATS = 4

# prog_flags
BPF_F_SLEEPABLE = 1 << 4

_SYSCALL_NR = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}

PROG_TYPES = {
    "socket_filter": 1, "kprobe": 2, "sched_cls": 3, "sched_act": 4, "tracepoint": 5,
    "xdp": 6, "perf_event": 7, "cgroup_skb": 8, "cgroup_sock": 9, "lwt_in": 10,
    "lwt_out": 11, "lwt_xmit": 12, "sock_ops": 13, "sk_skb": 14, "cgroup_device": 15,
    "sk_msg": 16, "raw_tracepoint": 17, "cgroup_sock_addr": 18, "lwt_seg6local": 19,
    "lirc_mode2": 20, "sk_reuseport": 21, "flow_dissector": 22, "cgroup_sysctl": 23,
    "raw_tracepoint_writable": 24, "cgroup_sockopt": 25, "tracing": 26, "struct_ops": 27,
    "ext": 28, "lsm": 29, "sk_lookup": 30, "syscall": 31,
}

MAP_TYPES = {
    "hash": 1, "array": 2, "prog_array": 3, "perf_event_array": 4, "percpu_hash": 5,
    "percpu_array": 6, "stack_trace": 7, "cgroup_array": 8, "lru_hash": 9,
    "lru_percpu_hash": 10, "lpm_trie": 11, "array_of_maps": 12, "hash_of_maps": 13,
    "devmap": 14, "sockmap": 15, "cpumap": 16, "xskmap": 17, "sockhash": 18,
    "cgroup_storage": 19, "reuseport_sockarray": 20, "percpu_cgroup_storage": 21,
    "queue": 22, "stack": 23, "sk_storage": 24, "devmap_hash": 25, "struct_ops": 26,
    "ringbuf": 27, "inode_storage": 28, "task_storage": 29, "bloom_filter": 30,
    "user_ringbuf": 31, "cgrp_storage": 32, "arena": 33,
}

BPF_F_NO_PREALLOC = 1
BPF_F_RDONLY_PROG = 1 << 7


# The kernel's internal ENOTSUPP, which reaches user space unnamed ("Unknown error 524"):
# BPF_PROG_TEST_RUN answers it for a program type it cannot run.
ENOTSUPP = 524


def strerror(errno: int | None) -> str:
    if errno == ENOTSUPP:
        return "not supported (ENOTSUPP)"
    return os.strerror(errno) if errno else "unknown error"


class BpfSyscallError(BpfLintError):
    """bpf() failed; ``errno`` and the verifier ``log`` (if any) are kept."""

    def __init__(self, message: str, errno: int | None, log: str = "") -> None:
        super().__init__(message)
        self.errno = errno
        self.log = log

    @property
    def reason(self) -> str:
        """The kernel's one-line reason: the verifier's last word when it logged one,
        else the errno's text."""
        last = _last_log_line(self.log)
        return f"{last} ({strerror(self.errno)})" if last else strerror(self.errno)


# Verifier and BTF log lines that mean "this kernel lacks the feature", not "the program
# is wrong": a helper added later or not offered to this program type, an instruction
# of a newer ISA, a BTF kind the kernel predates.
_MISSING_FEATURE = re.compile(
    r"program of this type cannot use helper \S+|invalid func unknown#\d+|"
    r"unknown func \S+|unknown opcode [0-9a-fx]+|Invalid kind|Invalid btf_info kind|"
    r"calling kernel function \S+ is not allowed|kernel btf_id \d+ is not a function")


def missing_feature(exc: BaseException) -> str | None:
    """What this kernel lacks, when ``exc`` is a refusal for that reason (None otherwise:
    a genuine rejection, or one whose cause the log does not name)."""
    if not isinstance(exc, BpfSyscallError):
        return None
    if exc.errno == ENOTSUPP:
        return str(exc)
    found = _MISSING_FEATURE.search(exc.log or str(exc))
    return found.group(0) if found else None


class _MapCreateAttr(ctypes.Structure):
    _fields_ = [
        ("map_type", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("inner_map_fd", ctypes.c_uint32),
        ("numa_node", ctypes.c_uint32),
        ("map_name", ctypes.c_char * 16),
        ("map_ifindex", ctypes.c_uint32),
        ("btf_fd", ctypes.c_uint32),
        ("btf_key_type_id", ctypes.c_uint32),
        ("btf_value_type_id", ctypes.c_uint32),
        ("btf_vmlinux_value_type_id", ctypes.c_uint32),
        ("map_extra", ctypes.c_uint64),
    ]


class _MapElemAttr(ctypes.Structure):
    _fields_ = [
        ("map_fd", ctypes.c_uint32),
        ("pad", ctypes.c_uint32),
        ("key", ctypes.c_uint64),
        ("value", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
    ]


class _ProgLoadAttr(ctypes.Structure):
    _fields_ = [
        ("prog_type", ctypes.c_uint32),
        ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
        ("prog_name", ctypes.c_char * 16),
        ("prog_ifindex", ctypes.c_uint32),
        ("expected_attach_type", ctypes.c_uint32),
        ("prog_btf_fd", ctypes.c_uint32),
        ("func_info_rec_size", ctypes.c_uint32),
        ("func_info", ctypes.c_uint64),
        ("func_info_cnt", ctypes.c_uint32),
        ("line_info_rec_size", ctypes.c_uint32),
        ("line_info", ctypes.c_uint64),
        ("line_info_cnt", ctypes.c_uint32),
        ("attach_btf_id", ctypes.c_uint32),
        ("attach_prog_fd", ctypes.c_uint32),
        ("core_relo_cnt", ctypes.c_uint32),
        ("fd_array", ctypes.c_uint64),
        ("core_relos", ctypes.c_uint64),
        ("core_relo_rec_size", ctypes.c_uint32),
        ("log_true_size", ctypes.c_uint32),
    ]


class _TestRunAttr(ctypes.Structure):
    _fields_ = [
        ("prog_fd", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("data_in", ctypes.c_uint64),
        ("data_out", ctypes.c_uint64),
        ("repeat", ctypes.c_uint32),
        ("duration", ctypes.c_uint32),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_uint64),
        ("ctx_out", ctypes.c_uint64),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
    ]


class _BtfLoadAttr(ctypes.Structure):
    _fields_ = [
        ("btf", ctypes.c_uint64),
        ("btf_log_buf", ctypes.c_uint64),
        ("btf_size", ctypes.c_uint32),
        ("btf_log_size", ctypes.c_uint32),
        ("btf_log_level", ctypes.c_uint32),
    ]


class _FdAttr(ctypes.Structure):
    _fields_ = [("fd", ctypes.c_uint32)]


class _IdAttr(ctypes.Structure):  # *_GET_NEXT_ID and *_GET_FD_BY_ID
    _fields_ = [("id", ctypes.c_uint32), ("next_id", ctypes.c_uint32),
                ("open_flags", ctypes.c_uint32)]


class _InfoAttr(ctypes.Structure):  # BPF_OBJ_GET_INFO_BY_FD
    _fields_ = [("bpf_fd", ctypes.c_uint32), ("info_len", ctypes.c_uint32),
                ("info", ctypes.c_uint64)]


class _EnableStatsAttr(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32)]


class _RawTpAttr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_uint64), ("prog_fd", ctypes.c_uint32),
                ("pad", ctypes.c_uint32), ("cookie", ctypes.c_uint64)]


class _LinkCreateAttr(ctypes.Structure):
    _fields_ = [("prog_fd", ctypes.c_uint32), ("target", ctypes.c_uint32),
                ("attach_type", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("extra", ctypes.c_uint64 * 4)]


_libc: ctypes.CDLL | None = None


def _sys_bpf(cmd: int, attr: ctypes.Structure) -> int:
    """Call bpf(cmd, &attr, sizeof attr); return the result or raise OSError."""
    global _libc
    nr = _SYSCALL_NR.get(platform.machine())
    if nr is None:
        raise OSError(0, f"bpf() syscall number unknown for {platform.machine()}")
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    ret = _libc.syscall(ctypes.c_long(nr), ctypes.c_int(cmd), ctypes.byref(attr),
                        ctypes.c_uint(ctypes.sizeof(attr)))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(ret)


# perf_event_open(): a BPF_OUTPUT software event is what a PERF_EVENT_ARRAY slot must
# hold for bpf_perf_event_output() to write a record instead of failing early.
_PERF_EVENT_OPEN_NR = {"x86_64": 298, "aarch64": 241, "riscv64": 241, "ppc64le": 319,
                       "s390x": 331}
PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_BPF_OUTPUT = 10
PERF_SAMPLE_RAW = 1 << 10
PERF_FLAG_FD_CLOEXEC = 1 << 3


class _PerfEventAttr(ctypes.Structure):  # struct perf_event_attr, PERF_ATTR_SIZE_VER0
    _fields_ = [
        ("type", ctypes.c_uint32), ("size", ctypes.c_uint32), ("config", ctypes.c_uint64),
        ("sample_period", ctypes.c_uint64), ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64), ("flags", ctypes.c_uint64),
        ("wakeup_events", ctypes.c_uint32), ("bp_type", ctypes.c_uint32),
        ("config1", ctypes.c_uint64),
    ]


def perf_bpf_output_open(cpu: int) -> int:
    """Open a BPF_OUTPUT perf event on ``cpu`` (any task); return its fd."""
    global _libc
    nr = _PERF_EVENT_OPEN_NR.get(platform.machine())
    if nr is None:
        raise BpfSyscallError(f"perf_event_open() number unknown for {platform.machine()}",
                              0)
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    attr = _PerfEventAttr(type=PERF_TYPE_SOFTWARE, size=ctypes.sizeof(_PerfEventAttr),
                          config=PERF_COUNT_SW_BPF_OUTPUT, sample_period=1,
                          sample_type=PERF_SAMPLE_RAW, wakeup_events=1)
    ret = _libc.syscall(ctypes.c_long(nr), ctypes.byref(attr), ctypes.c_int(-1),
                        ctypes.c_int(cpu), ctypes.c_int(-1),
                        ctypes.c_ulong(PERF_FLAG_FD_CLOEXEC))
    if ret < 0:
        err = ctypes.get_errno()
        raise BpfSyscallError(f"cannot open a BPF_OUTPUT perf event: {os.strerror(err)}",
                              err)
    return int(ret)


def _name16(name: str) -> bytes:
    # The kernel accepts only [A-Za-z0-9_.] in object names, 15 chars max.
    return re.sub(r"[^A-Za-z0-9_.]", "_", name)[:15].encode()


def map_create(map_type: int, key_size: int, value_size: int, max_entries: int,
               flags: int = 0, name: str = "", map_extra: int = 0,
               inner_map_fd: int = 0) -> int:
    """``inner_map_fd``: the template map of a map-in-map (array_of_maps, hash_of_maps)."""
    attr = _MapCreateAttr(map_type=map_type, key_size=key_size, value_size=value_size,
                          max_entries=max_entries, map_flags=flags, map_name=_name16(name),
                          map_extra=map_extra, inner_map_fd=inner_map_fd)
    try:
        return _sys_bpf(BPF_MAP_CREATE, attr)
    except OSError as exc:
        raise BpfSyscallError(f"cannot create map {name or map_type!r}: {exc.strerror}",
                              exc.errno) from None


def map_update(map_fd: int, key: bytes, value: bytes, flags: int = 0) -> None:
    kbuf = ctypes.create_string_buffer(key, len(key) or 1)
    vbuf = ctypes.create_string_buffer(value, len(value) or 1)
    # queue and stack maps take no key: a NULL pointer, not an empty buffer
    attr = _MapElemAttr(map_fd=map_fd, key=ctypes.addressof(kbuf) if key else 0,
                        value=ctypes.addressof(vbuf), flags=flags)
    try:
        _sys_bpf(BPF_MAP_UPDATE_ELEM, attr)
    except OSError as exc:
        raise BpfSyscallError(f"cannot update map fd {map_fd}: {exc.strerror}",
                              exc.errno) from None


class _MapBatchAttr(ctypes.Structure):
    _fields_ = [
        ("in_batch", ctypes.c_uint64),
        ("out_batch", ctypes.c_uint64),
        ("keys", ctypes.c_uint64),
        ("values", ctypes.c_uint64),
        ("count", ctypes.c_uint32),
        ("map_fd", ctypes.c_uint32),
        ("elem_flags", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
    ]


def map_update_batch(map_fd: int, keys: bytes, values: bytes, count: int) -> None:
    """Insert ``count`` elements in one call (keys and values packed back to back)."""
    kbuf = ctypes.create_string_buffer(keys, len(keys) or 1)
    vbuf = ctypes.create_string_buffer(values, len(values) or 1)
    attr = _MapBatchAttr(keys=ctypes.addressof(kbuf), values=ctypes.addressof(vbuf),
                         count=count, map_fd=map_fd)
    try:
        _sys_bpf(BPF_MAP_UPDATE_BATCH, attr)
    except OSError as exc:
        raise BpfSyscallError(f"cannot update map fd {map_fd} in a batch: {exc.strerror}",
                              exc.errno) from None
    if attr.count != count:
        raise BpfSyscallError(f"map fd {map_fd}: {attr.count} of {count} elements inserted",
                              0)


def map_lookup(map_fd: int, key: bytes, value_size: int) -> bytes:
    kbuf = ctypes.create_string_buffer(key, len(key) or 1)
    vbuf = ctypes.create_string_buffer(value_size or 1)
    attr = _MapElemAttr(map_fd=map_fd, key=ctypes.addressof(kbuf), value=ctypes.addressof(vbuf))
    try:
        _sys_bpf(BPF_MAP_LOOKUP_ELEM, attr)
    except OSError as exc:
        raise BpfSyscallError(f"cannot look up map fd {map_fd}: {exc.strerror}",
                              exc.errno) from None
    return vbuf.raw[:value_size]


def map_freeze(map_fd: int) -> None:
    try:
        _sys_bpf(BPF_MAP_FREEZE, _FdAttr(fd=map_fd))
    except OSError as exc:
        raise BpfSyscallError(f"cannot freeze map fd {map_fd}: {exc.strerror}",
                              exc.errno) from None


def btf_load(blob: bytes) -> int:
    """Load raw BTF; return its fd (for prog_btf_fd)."""
    buf = ctypes.create_string_buffer(blob, len(blob))
    log = ctypes.create_string_buffer(1 << 16)
    attr = _BtfLoadAttr(btf=ctypes.addressof(buf), btf_size=len(blob),
                        btf_log_buf=ctypes.addressof(log), btf_log_size=len(log),
                        btf_log_level=1)
    try:
        return _sys_bpf(BPF_BTF_LOAD, attr)
    except OSError as exc:
        text = log.value.decode(errors="replace")
        detail = _last_log_line(text)
        raise BpfSyscallError(f"kernel rejected BTF ({exc.strerror})"
                              + (f": {detail}" if detail else ""), exc.errno, text) from None


@dataclass(frozen=True, slots=True)
class VerifierStats:
    verification_usec: int | None  # "verification time N usec"
    processed_insns: int | None  # "processed N insns (limit ...)"


@dataclass(frozen=True, slots=True)
class LoadedProg:
    fd: int
    log: str
    stats: VerifierStats


_TIME_RE = re.compile(r"verification time (\d+) usec")
_PROCESSED_RE = re.compile(r"processed (\d+) insns")


def parse_verifier_stats(log: str) -> VerifierStats:
    t = _TIME_RE.search(log)
    p = _PROCESSED_RE.search(log)
    return VerifierStats(int(t.group(1)) if t else None, int(p.group(1)) if p else None)


def prog_load(prog_type: int, insns: bytes, license: str = "GPL", *, name: str = "",
              log_level: int = BPF_LOG_STATS, log_size: int = 1 << 20,
              expected_attach_type: int = 0, prog_flags: int = 0,
              prog_btf_fd: int = 0, func_info: bytes = b"", func_info_rec_size: int = 0,
              line_info: bytes = b"", line_info_rec_size: int = 0,
              fd_array: tuple[int, ...] = ()) -> LoadedProg:
    """Load a program; on failure raise BpfSyscallError carrying the verifier log.

    With BPF_LOG_STATS the log ends with the verifier's statistics, so callers get
    the verification time and processed-instruction count without a verbose log.
    """
    ibuf = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license.encode())
    logbuf = ctypes.create_string_buffer(log_size if log_level else 1)
    fibuf = ctypes.create_string_buffer(func_info, len(func_info) or 1)
    libuf = ctypes.create_string_buffer(line_info, len(line_info) or 1)
    fds = (ctypes.c_int * max(1, len(fd_array)))(*fd_array)
    attr = _ProgLoadAttr(
        prog_type=prog_type, insn_cnt=len(insns) // 8, insns=ctypes.addressof(ibuf),
        license=ctypes.addressof(lic), log_level=log_level,
        log_size=log_size if log_level else 0,
        log_buf=ctypes.addressof(logbuf) if log_level else 0,
        prog_flags=prog_flags, prog_name=_name16(name),
        expected_attach_type=expected_attach_type, prog_btf_fd=prog_btf_fd,
        func_info_rec_size=func_info_rec_size if func_info else 0,
        func_info=ctypes.addressof(fibuf) if func_info else 0,
        func_info_cnt=len(func_info) // func_info_rec_size if func_info else 0,
        line_info_rec_size=line_info_rec_size if line_info else 0,
        line_info=ctypes.addressof(libuf) if line_info else 0,
        line_info_cnt=len(line_info) // line_info_rec_size if line_info else 0,
        fd_array=ctypes.addressof(fds) if fd_array else 0,
    )
    try:
        fd = _sys_bpf(BPF_PROG_LOAD, attr)
    except OSError as exc:
        log = logbuf.value.decode(errors="replace")
        last = _last_log_line(log)
        detail = f": {last}" if last else ""
        raise BpfSyscallError(f"kernel rejected program {name!r} ({exc.strerror}){detail}",
                              exc.errno, log) from None
    log = logbuf.value.decode(errors="replace")
    return LoadedProg(fd, log, parse_verifier_stats(log))


def _last_log_line(log: str) -> str:
    """The verifier's reason: the last line that is not the statistics trailer."""
    for line in reversed(log.strip().splitlines()):
        if line and not _TIME_RE.search(line) and not _PROCESSED_RE.search(line) \
                and not line.startswith(("stack depth", "mark_precise")):
            return line.strip()
    return ""


@dataclass(frozen=True, slots=True)
class RunResult:
    retval: int
    duration_ns: int  # average per repetition as the kernel reports it (0 if none)
    data_out: bytes


def prog_test_run(prog_fd: int, data: bytes = b"", ctx: bytes = b"", repeat: int = 0,
                  data_out_size: int = 0) -> RunResult:
    dbuf = ctypes.create_string_buffer(data, len(data) or 1)
    cbuf = ctypes.create_string_buffer(ctx, len(ctx) or 1)
    obuf = ctypes.create_string_buffer(max(1, data_out_size))
    attr = _TestRunAttr(
        prog_fd=prog_fd, data_size_in=len(data), data_in=ctypes.addressof(dbuf) if data else 0,
        data_size_out=data_out_size, data_out=ctypes.addressof(obuf) if data_out_size else 0,
        repeat=repeat, ctx_size_in=len(ctx), ctx_in=ctypes.addressof(cbuf) if ctx else 0,
    )
    try:
        _sys_bpf(BPF_PROG_TEST_RUN, attr)
    except OSError as exc:
        raise BpfSyscallError(f"test run of program fd {prog_fd} failed: "
                              f"{strerror(exc.errno)}", exc.errno) from None
    out = obuf.raw[: min(attr.data_size_out, data_out_size)] if data_out_size else b""
    return RunResult(attr.retval, attr.duration, out)


def close(fd: int) -> None:
    os.close(fd)


# -- introspection of what is loaded (audit) ------------------------------------------

def get_next_id(cmd: int, start: int) -> int | None:
    """The next prog/map/link/BTF id after ``start`` (BPF_*_GET_NEXT_ID), None at the end."""
    attr = _IdAttr(id=start)
    try:
        _sys_bpf(cmd, attr)
    except OSError as exc:
        if exc.errno == 2:  # ENOENT: no more
            return None
        raise BpfSyscallError(f"cannot list BPF objects: {strerror(exc.errno)}",
                              exc.errno) from None
    return int(attr.next_id)


def fd_by_id(cmd: int, obj_id: int) -> int | None:
    """An fd for the object ``obj_id`` (BPF_*_GET_FD_BY_ID); None if it is gone."""
    try:
        return _sys_bpf(cmd, _IdAttr(id=obj_id))
    except OSError as exc:
        if exc.errno == 2:  # unloaded since it was listed
            return None
        raise BpfSyscallError(f"cannot open BPF object id {obj_id}: {strerror(exc.errno)}",
                              exc.errno) from None


def obj_get_info(fd: int, info: ctypes.Structure) -> None:
    """Fill ``info`` (a bpf_*_info structure, pointers and counts set by the caller)."""
    attr = _InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    try:
        _sys_bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    except OSError as exc:
        raise BpfSyscallError(f"cannot read the info of BPF fd {fd}: {strerror(exc.errno)}",
                              exc.errno) from None


def raw_tracepoint_open(prog_fd: int, name: str) -> int:
    """Attach a raw_tracepoint program to tracepoint ``name``; the link's fd (tests)."""
    buf = ctypes.create_string_buffer(name.encode())
    try:
        return _sys_bpf(BPF_RAW_TRACEPOINT_OPEN,
                        _RawTpAttr(name=ctypes.addressof(buf), prog_fd=prog_fd))
    except OSError as exc:
        raise BpfSyscallError(f"cannot attach to raw tracepoint {name}: "
                              f"{strerror(exc.errno)}", exc.errno) from None


def link_create(prog_fd: int, target: int, attach_type: int) -> int:
    """BPF_LINK_CREATE: ``target`` is an ifindex (BPF_XDP) or a perf event fd
    (BPF_PERF_EVENT); the link's fd (tests)."""
    try:
        return _sys_bpf(BPF_LINK_CREATE, _LinkCreateAttr(prog_fd=prog_fd, target=target,
                                                         attach_type=attach_type))
    except OSError as exc:
        raise BpfSyscallError(f"cannot create a link (attach type {attach_type}): "
                              f"{strerror(exc.errno)}", exc.errno) from None


def enable_stats() -> int:
    """Turn on run-time statistics (run_time_ns, run_cnt) for as long as the returned fd
    stays open: the kernel switches them off by itself when the last such fd closes."""
    try:
        return _sys_bpf(BPF_ENABLE_STATS, _EnableStatsAttr(type=BPF_STATS_RUN_TIME))
    except OSError as exc:
        raise BpfSyscallError(f"cannot enable BPF statistics: {strerror(exc.errno)}",
                              exc.errno) from None


_TRIVIAL_PROG = bytes.fromhex("b700000000000000" "9500000000000000")  # r0 = 0; exit


_PACKET_TYPES = ("xdp", "sched_cls", "sched_act", "socket_filter", "cgroup_skb", "lwt_in",
                 "lwt_out", "lwt_xmit", "flow_dissector")


@functools.cache
def prog_type_runs(prog_type: str) -> tuple[bool, str]:
    """Whether this kernel loads and test-runs a trivial program of ``prog_type``,
    and if not, its reason (a type or a test run it lacks)."""
    flags = BPF_F_SLEEPABLE if prog_type == "syscall" else 0
    try:
        prog = prog_load(PROG_TYPES[prog_type], _TRIVIAL_PROG, name="probe", log_level=0,
                         prog_flags=flags)
    except OSError as exc:
        return False, f"bpf() unavailable: {exc.strerror or exc}"
    except BpfSyscallError as exc:
        return False, f"this kernel does not load {prog_type} programs: {exc.reason}"
    try:
        data = bytes(64) if prog_type in _PACKET_TYPES else b""
        prog_test_run(prog.fd, data=data)
    except BpfSyscallError as exc:
        return False, f"this kernel does not test-run {prog_type} programs: {exc.reason}"
    finally:
        close(prog.fd)
    return True, f"{prog_type} programs load and run"


def bpf_usable() -> tuple[bool, str]:
    """Whether bpf() can load and test-run a program here, and if not, why."""
    try:
        prog = prog_load(PROG_TYPES["socket_filter"], _TRIVIAL_PROG, name="probe", log_level=0)
    except OSError as exc:
        return False, f"bpf() unavailable: {exc.strerror or exc}"
    except BpfSyscallError as exc:
        return False, f"bpf() cannot load a trivial program: {exc}"
    try:
        prog_test_run(prog.fd, data=bytes(64))
    except BpfSyscallError as exc:
        return False, f"BPF_PROG_TEST_RUN unusable: {exc}"
    finally:
        close(prog.fd)
    return True, "bpf() usable"
