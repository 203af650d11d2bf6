"""Load and time calibration benchmarks on the running kernel (BPF_PROG_TEST_RUN).

Each benchmark becomes a pair of programs, P0 and PN (``units`` bodies between the
same prologue and epilogue), loaded and run ``samples`` times; the maps the bodies
use are created once (:func:`environment`) and emptied between runs.
"""

from __future__ import annotations

import functools
import mmap
import os
import statistics
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bpflint.errors import BpfLintError
from bpflint.isa.opcodes import AluOp, JmpOp
from bpflint.kernel import btf_blob
from bpflint.kernel import bytecode as bc
from bpflint.kernel import syscall as sc
from bpflint.kernel.bytecode import R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10
from bpflint.kernel.calibrate.benches import (
    BIG_VALUE_BYTES,
    COLD_ENTRIES,
    COLD_MAP_TYPES,
    KEY_OFF,
    MISS_KEY_OFF,
    PACKET,
    STACK_ZERO_BYTES,
    Bench,
    Env,
    Refused,
    helper_id,
)
from bpflint.kernel.loader import possible_cpus

PERF_BUFFER_PAGES = 8192  # 32 MiB: a full calibration sample of perf_event_output_512
MAX_STACK_DEPTH = 127  # the kernel's PERF_MAX_STACK_DEPTH: a stack_trace map value


@dataclass(frozen=True)
class Measured:
    min_ns: float
    median_ns: float
    spread_pct: float


@dataclass
class Options:
    samples: int
    repeat: int
    inline_samples: int
    unit_scale: float
    progress: Callable[[str], None] = field(default=lambda msg: None)


QUICK = Options(samples=3, repeat=2000, inline_samples=9, unit_scale=0.5)
FULL = Options(samples=7, repeat=8000, inline_samples=31, unit_scale=1.0)


# -- program skeletons ----------------------------------------------------------

def _ctx_data_offsets(prog_type: str) -> tuple[int, int]:
    # xdp_md.data/data_end; __sk_buff.data/data_end
    return (0, 4) if prog_type == "xdp" else (76, 80)


def _prologue(env: Env, prog_type: str) -> list[bytes]:
    code = [bc.mov64(R6, R1)]
    for off in range(-STACK_ZERO_BYTES, 0, 8):
        value = -1 if MISS_KEY_OFF <= off < MISS_KEY_OFF + 64 else 0
        code.append(bc.st(8, R10, off, value))
    code += [bc.ld_map_fd(R1, env.fd("big")), bc.mov64(R2, R10),
             bc.alu64(AluOp.ADD, R2, imm=KEY_OFF), bc.call_helper(1),
             bc.mov64(R8, R0)]
    return code


def _program(env: Env, bench: Bench, units: int) -> bytes:
    """Prologue, ``pre``, ``units`` bodies, epilogue; bail-outs jump to the epilogue."""
    inline = bench.prog_type in ("raw_tracepoint", "syscall")
    head = _prologue(env, bench.prog_type)
    checks: list[tuple[int, bytes]] = []  # (index in head, jump to patch)
    checks.append((len(head), bc.jmp_imm(JmpOp.JEQ, R8, 0, 0)))
    head.append(b"")
    if inline:
        head += [bc.call_helper(helper_id("ktime_get_ns")), bc.mov64(R9, R0), bc.mov64(R7, imm=1)]
    else:
        data_off, end_off = _ctx_data_offsets(bench.prog_type)
        head += [bc.ldx(4, R2, R6, data_off), bc.ldx(4, R3, R6, end_off),
                 bc.mov64(R4, R2), bc.alu64(AluOp.ADD, R4, imm=128)]
        checks.append((len(head), bc.jmp_reg(JmpOp.JGT, R4, R3, 0)))
        head.append(b"")
        head += [bc.ldx(8, R7, R2, 0), bc.ldx(8, R9, R2, 8), bc.ldx(8, R5, R2, 16)]
    pre = bench.pre(env) if bench.pre is not None else b""
    post = bench.post(env) if bench.post is not None else b""
    body = pre + bench.body(env) * units + post
    if inline:
        tail = (bc.call_helper(helper_id("ktime_get_ns")) + bc.alu64(AluOp.SUB, R0, R9)
                + bc.exit_())
        verdict = 0
    else:
        tail = b""
        verdict = 2 if bench.prog_type == "xdp" else 0
    positions = []
    slot = 0
    for part in head:
        positions.append(slot)
        slot += bc.slots(part) if part else 1
    out_slot = slot + bc.slots(body) + bc.slots(tail)
    for index, template in checks:
        off = out_slot - positions[index] - 1
        head[index] = template[:2] + struct.pack("<h", off) + template[4:]
    code = b"".join(head) + body + tail + bc.mov64(R0, imm=verdict) + bc.exit_()
    if bench.extra is not None and units:
        code = _point_at(code, slot, slot + bc.slots(body)) + bench.extra(env)
    return code


def _point_at(code: bytes, first: int, end: int) -> bytes:
    """Aim the body's bpf-to-bpf calls and function loads at the code appended next."""
    target = bc.slots(code)
    out = bytearray(code)
    for pc in range(first, end):
        op, regs = out[pc * 8], out[pc * 8 + 1]
        if (op == 0x85 and regs >> 4 == 1) or (op == 0x18 and regs >> 4 == 4):
            struct.pack_into("<i", out, pc * 8 + 4, target - pc - 1)
    return bytes(out)


# -- timing ---------------------------------------------------------------------

def _load(bench: Bench, code: bytes, func_starts: tuple[int, ...] = (0,)) -> int:
    """Load one benchmark; ``func_starts`` (slots) marks subprograms and callbacks,
    which then get the minimal BTF func_info the verifier asks for. A refusal raises
    Refused with the verifier's reason."""
    flags = sc.BPF_F_SLEEPABLE if bench.prog_type == "syscall" else 0
    btf_fd = 0
    if len(func_starts) > 1:
        try:
            btf_fd = sc.btf_load(btf_blob.func_btf(len(func_starts)))
        except sc.BpfSyscallError as exc:
            raise Refused("load", f"BTF for its callback: {exc.reason}") from None

    def load(log_level: int) -> int:
        return sc.prog_load(
            sc.PROG_TYPES[bench.prog_type], code, name=bench.variant, log_level=log_level,
            prog_flags=flags, prog_btf_fd=btf_fd,
            func_info=btf_blob.func_info(list(func_starts)) if btf_fd else b"",
            func_info_rec_size=btf_blob.FUNC_INFO_REC_BYTES).fd

    try:
        return load(0)
    except sc.BpfSyscallError as first:
        # Reload with a verbose log only to explain the failure.
        try:
            load(1)
        except sc.BpfSyscallError as exc:
            raise Refused("load", exc.reason) from None
        raise Refused("load", first.reason) from None
    finally:
        if btf_fd:
            sc.close(btf_fd)


def _packet(prog_type: str) -> bytes:
    if prog_type == "xdp":
        return PACKET + bytes(232)
    # Ethernet + IPv4 + TCP, so skb helpers see a well-formed packet.
    eth = bytes(6) + bytes.fromhex("020000000001") + b"\x08\x00"
    payload_len = 256 - 14
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, payload_len, 0, 0, 64, 6, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
    tcp = struct.pack("!HHIIBBHHH", 1234, 80, 0, 0, 0x50, 0x02, 1024, 0, 0)
    rest = bytes(payload_len - len(ip) - len(tcp))
    frame = eth + ip + tcp + rest
    # r7/r9/r5 come from packet offsets 0/8/16: keep the MAC addresses meaningful
    # for xdp only; tc benches read whatever the header holds (scalars either way).
    return frame


def _time(env: Env, bench: Bench, fds: tuple[int, int], opts: Options,
          reset: Callable[[], None]) -> tuple[list[float], list[float]]:
    try:
        return _time_runs(bench, fds, opts, reset)
    except sc.BpfSyscallError as exc:
        raise Refused("run", exc.reason) from None


def _time_runs(bench: Bench, fds: tuple[int, int], opts: Options,
               reset: Callable[[], None]) -> tuple[list[float], list[float]]:
    data = _packet(bench.prog_type)
    t0: list[float] = []
    tn: list[float] = []
    if bench.prog_type in ("raw_tracepoint", "syscall"):
        for _ in range(opts.inline_samples):
            for fd, out in ((fds[0], t0), (fds[1], tn)):
                out.append(float(sc.prog_test_run(fd).retval))
        return t0, tn
    repeat = opts.repeat
    for _ in range(opts.samples):
        for fd, out in ((fds[0], t0), (fds[1], tn)):
            reset()
            out.append(float(sc.prog_test_run(fd, data=data, repeat=repeat).duration_ns))
    return t0, tn


def measure(env: Env, bench: Bench, opts: Options,
            reset: Callable[[], None] = lambda: None) -> Measured:
    if bench.routed:
        with routed_netns():
            return _measure(env, bench, opts, reset)
    return _measure(env, bench, opts, reset)


CLONE_NEWNET = 0x40000000
ROUTED_V4 = ("192.0.2.1/24", "192.0.2.2")  # the namespace's address and its gateway
ROUTED_V6 = ("2001:db8::1/64", "2001:db8::2")
GATEWAY_MAC = "02:00:00:00:00:02"


@contextmanager
def routed_netns() -> Iterator[None]:
    """Run in a new network namespace where a packet could be forwarded: lo up, a
    veth pair, one end with IPv4 and IPv6 addresses, default routes through a gateway
    whose neighbour entry is permanent, forwarding on. fib_lookup then walks the
    whole of its path (route, neighbour, MACs) and returns success, as on a router;
    in the machine's own namespace forwarding is usually off and it stops at once.
    The machine's own network is not touched. iproute2 (`ip`) sets it up: without
    it, or without the right to, the benchmark is refused."""
    import ctypes
    import ctypes.util
    import subprocess

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        if libc.unshare(CLONE_NEWNET) != 0:
            raise Refused("run", "cannot make a network namespace: "
                          + os.strerror(ctypes.get_errno()))
        try:
            _route_here(subprocess.run)
            yield
        finally:
            if libc.setns(home, CLONE_NEWNET) != 0:
                raise BpfLintError("cannot return to the original network namespace: "
                                   + os.strerror(ctypes.get_errno()))
    finally:
        os.close(home)


def _route_here(run: Callable[..., Any]) -> None:
    """Set up routed_netns()'s interface, routes and neighbours in the current one."""
    steps = [
        ["ip", "link", "set", "lo", "up"],
        ["ip", "link", "add", "fib0", "type", "veth", "peer", "name", "fib1"],
        ["ip", "link", "set", "fib1", "up"],
        ["ip", "link", "set", "fib0", "up"],
        ["ip", "addr", "add", ROUTED_V4[0], "dev", "fib0"],
        ["ip", "-6", "addr", "add", ROUTED_V6[0], "dev", "fib0", "nodad"],
        ["ip", "route", "add", "default", "via", ROUTED_V4[1]],
        ["ip", "-6", "route", "add", "default", "via", ROUTED_V6[1]],
        ["ip", "neigh", "add", ROUTED_V4[1], "lladdr", GATEWAY_MAC, "dev", "fib0",
         "nud", "permanent"],
        ["ip", "-6", "neigh", "add", ROUTED_V6[1], "lladdr", GATEWAY_MAC, "dev", "fib0",
         "nud", "permanent"],
    ]
    try:
        for argv in steps:
            done = run(argv, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                why = (done.stderr.strip() or "failed").splitlines()[0]
                raise Refused("run", f"{' '.join(argv)}: {why}")
        for path in ("/proc/sys/net/ipv4/conf/all/forwarding",
                     "/proc/sys/net/ipv4/conf/fib0/forwarding",
                     "/proc/sys/net/ipv6/conf/all/forwarding"):
            with open(path, "w", encoding="ascii") as f:
                f.write("1")
    except OSError as exc:
        raise Refused("run", f"cannot set up a routed network namespace: {exc}") from None


def _measure(env: Env, bench: Bench, opts: Options,
             reset: Callable[[], None] = lambda: None) -> Measured:
    units = max(1, round(bench.units * opts.unit_scale))
    code = _program(env, bench, units)
    starts: tuple[int, ...] = (0,)
    if bench.extra is not None:
        starts = (0, bc.slots(code) - bc.slots(bench.extra(env)))
    empty_fd = _load(bench, _program(env, bench, 0))
    try:
        fds = (empty_fd, _load(bench, code, starts))
    except BaseException:
        sc.close(empty_fd)
        raise
    try:
        t0, tn = _time(env, bench, fds, opts, reset)
    finally:
        for fd in fds:
            sc.close(fd)
    per = units * bench.calls_per_unit
    lo = (min(tn) - min(t0)) / per
    # P0 and PN run back to back in each sample, so a pair sees the same neighbours:
    # the median of the paired differences drifts far less than a difference of medians.
    med = statistics.median(b - a for a, b in zip(t0, tn, strict=True)) / per
    spread = 100.0 * (statistics.median(tn) - min(tn)) / max(min(tn), 1.0)
    return Measured(lo, med, spread)


# -- maps -----------------------------------------------------------------------

@contextmanager
def _pinned_cpu() -> Iterator[int]:
    """Keep this process on one CPU it may use: the BPF_OUTPUT perf event, whose
    buffer perf_event_output writes, then needs opening on that CPU only."""
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


@contextmanager
def environment(ringbuf_bytes: int, cold_maps: bool = True) -> Iterator[Env]:
    """The maps every benchmark may use; ``cold_maps``: also the million-key maps of
    the cold-cache benchmarks (a few seconds each to create and fill)."""
    with _pinned_cpu() as cpu, _maps(ringbuf_bytes, cpu, cold_maps) as env:
        yield env


@contextmanager
def _maps(ringbuf_bytes: int, cpu: int, cold_maps: bool = True) -> Iterator[Env]:
    fds: dict[str, int] = {}
    missing: dict[str, str] = {}
    progs: list[int] = []

    def create(name: str, mtype: str, key: int, value: int, entries: int,
               flags: int = 0, fill: tuple[tuple[bytes, bytes], ...] = (),
               inner: int = 0) -> None:
        fds[name] = sc.map_create(sc.MAP_TYPES[mtype], key, value, entries, flags, name,
                                  inner_map_fd=inner)
        for k, v in fill:
            sc.map_update(fds[name], k, v)

    def optional(name: str, make: Callable[[], None]) -> None:
        """A map this kernel may lack (a newer type, a perf event): its benchmarks are
        refused with the reason instead of the whole calibration."""
        try:
            make()
        except sc.BpfSyscallError as exc:
            if name in fds:
                sc.close(fds.pop(name))
            missing[name] = exc.reason

    try:
        # Every program's prologue looks this array up: without it nothing runs.
        try:
            create("big", "array", 4, BIG_VALUE_BYTES, 1,
                   fill=((bytes(4), b"A" * (BIG_VALUE_BYTES - 1) + b"\0"),))
        except sc.BpfSyscallError as exc:
            raise BpfLintError(f"calibrate needs a {BIG_VALUE_BYTES}-byte array map, which "
                               f"this kernel refuses: {exc}") from None
        for mtype in ("array", "percpu_array"):
            optional(mtype, functools.partial(create, mtype, mtype, 4, 64, 4))
        ncpu = os.cpu_count() or 1
        for mtype in ("hash", "percpu_hash", "lru_hash", "lru_percpu_hash"):
            for key_size in (4, 64):
                value = bytes(64 * (ncpu if "percpu" in mtype else 1))
                optional(f"{mtype}{key_size}", functools.partial(
                    create, f"{mtype}{key_size}", mtype, key_size, 64, 1024,
                    fill=((bytes(key_size), value),)))
        def map_in_map() -> None:
            create("inner", "array", 4, 8, 1)
            inner = struct.pack("<I", fds["inner"])
            for key_size in (4, 64):
                create(f"hash_of_maps{key_size}", "hash_of_maps", key_size, 4, 1024,
                       fill=((bytes(key_size), inner),), inner=fds["inner"])
            create("array_of_maps4", "array_of_maps", 4, 4, 4,
                   fill=((bytes(4), inner),), inner=fds["inner"])

        optional("inner", map_in_map)
        for name in ("hash_of_maps4", "hash_of_maps64", "array_of_maps4"):
            if "inner" in missing:  # the outer maps go with their template
                fd = fds.pop(name, None)
                if fd is not None:
                    sc.close(fd)
                missing[name] = missing["inner"]
        def cold_hash(mtype: str, key_size: int) -> None:
            # far bigger than the last-level cache: a lookup of a key not used lately
            # misses it (bucket, element, value); keys are 0..N-1 in their first 4 bytes.
            # An LRU map gets room to spare, so filling it evicts none of them.
            name = f"{mtype}{key_size}_cold"
            lru = mtype.startswith("lru_")
            create(name, mtype, key_size, 64, COLD_ENTRIES + (COLD_ENTRIES // 4 if lru else 0))
            chunk = 1 << 16
            # a per-CPU value is one 64-byte slot per possible CPU
            value = bytes(64 * (possible_cpus() if "percpu" in mtype else 1)) * chunk
            pad = bytes(key_size - 4)
            for first in range(0, COLD_ENTRIES, chunk):
                keys = b"".join(struct.pack("<I", k) + pad for k in range(first, first + chunk))
                sc.map_update_batch(fds[name], keys, value, chunk)

        for mtype in COLD_MAP_TYPES if cold_maps else ():
            for key_size in (4, 64):
                optional(f"{mtype}{key_size}_cold",
                         functools.partial(cold_hash, mtype, key_size))
        optional("lpm_trie", functools.partial(
            create, "lpm_trie", "lpm_trie", 8, 8, 64, sc.BPF_F_NO_PREALLOC,
            fill=((struct.pack("<I", 8) + bytes(4), bytes(8)),)))
        for mtype in ("queue", "stack"):
            optional(mtype, functools.partial(create, mtype, mtype, 0, 64, 4,
                                              fill=((b"", bytes(64)),) * 4))
        for entries in (1, 16, 64):
            optional(f"each{entries}",
                     functools.partial(create, f"each{entries}", "array", 4, 8, entries))
        optional("ringbuf", functools.partial(create, "ringbuf", "ringbuf", 0, 0,
                                              ringbuf_bytes))
        optional("stack_trace", functools.partial(create, "stack_trace", "stack_trace", 4,
                                                  8 * MAX_STACK_DEPTH, 1024))

        def perf_array() -> None:
            event = sc.perf_bpf_output_open(cpu)
            fds["perf_event"] = event
            create("perf_array", "perf_event_array", 4, 4, max(ncpu, cpu + 1),
                   fill=((struct.pack("<I", cpu), struct.pack("<I", event)),))

        optional("perf_array", perf_array)
        if "perf_array" in missing and "perf_event" in fds:
            sc.close(fds.pop("perf_event"))
        optional("devmap", functools.partial(create, "devmap", "devmap", 4, 4, 4))

        def prog_array() -> None:
            create("prog_array", "prog_array", 4, 4, 2)
            target = sc.prog_load(sc.PROG_TYPES["xdp"], bc.mov64(R0, imm=2) + bc.exit_(),
                                  name="tail_target", log_level=0)
            progs.append(target.fd)
            sc.map_update(fds["prog_array"], struct.pack("<I", 0), struct.pack("<I", target.fd))

        optional("prog_array", prog_array)
        yield Env(fds, ringbuf_bytes, missing)
    finally:
        for fd in [*fds.values(), *progs]:
            sc.close(fd)


@contextmanager
def buffers_reset(env: Env) -> Iterator[Callable[[], None]]:
    """Empty the ring buffer and the perf buffer (consumer position := producer
    position) before each sample, so every record of it finds room: a full buffer
    turns the helpers into their cheap failure path. A buffer that cannot be mapped
    takes its map out of the environment (its benchmarks are then refused)."""
    page = mmap.PAGESIZE
    maps: list[mmap.mmap] = []
    moves: list[Callable[[], None]] = []

    def mapped(fd_name: str, size: int, prot: int, offset: int = 0) -> mmap.mmap:
        area = mmap.mmap(env.fds[fd_name], size, mmap.MAP_SHARED, prot, offset=offset)
        maps.append(area)
        return area

    try:
        try:
            if "ringbuf" in env.fds:
                consumer = mapped("ringbuf", page,
                                  mmap.PROT_READ | mmap.PROT_WRITE)
                producer = mapped("ringbuf", page, mmap.PROT_READ, page)

                def ring() -> None:
                    consumer[0:8] = producer[0:8]
                moves.append(ring)
        except OSError as exc:
            _drop(env, "ringbuf", f"cannot map its buffer: {exc.strerror}")
        try:
            if "perf_event" in env.fds:
                # struct perf_event_mmap_page, then the data pages; data_head at 1024,
                # data_tail at 1032 in the first page
                perf = mapped("perf_event", page * (1 + PERF_BUFFER_PAGES),
                              mmap.PROT_READ | mmap.PROT_WRITE)

                def perf_buffer() -> None:
                    perf[1032:1040] = perf[1024:1032]
                moves.append(perf_buffer)
        except OSError as exc:
            _drop(env, "perf_array", f"cannot map its perf buffer: {exc.strerror}")

        def reset() -> None:
            for move in moves:
                move()
        yield reset
    finally:
        for area in maps:
            area.close()


def _drop(env: Env, name: str, reason: str) -> None:
    """Take a map out of the environment: benchmarks that need it are refused."""
    env.missing[name] = reason
    fd = env.fds.pop(name, None)
    if fd is not None:
        sc.close(fd)
