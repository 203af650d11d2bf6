"""Random BPF C programs in the idioms real projects use, for the C-level fuzzer.

The assembly-level fuzzer (progfuzz_gen.py) writes bytecode by hand; this one writes
C and lets clang -O2 choose the code, so the analysis meets what clang really emits
for the everyday shapes: packet parsing behind bounds checks (Ethernet, IPv4 with a
variable header length, L4 ports), ``for`` loops bounded by constants, by ``const
volatile`` globals the loader sets, by packet bytes clamped with ``&`` or a min, by
map values; nested loops whose inner bound depends on the outer counter; ``break`` and
``continue`` on data; ``#pragma unroll``; switch statements; early returns;
``bpf_loop`` and ``bpf_for_each_map_elem`` callbacks writing the caller's stack
through their ctx pointer (and the map value); helpers with a size bounded by a type
(``__u8``) or a clamp; static and global ``__noinline`` subprograms; open-coded
``bpf_for`` / ``bpf_repeat`` iterators and ``cond_break`` (may_goto).

:func:`generate` gives a :class:`CProgram` (the source and what the runner needs to
know: program type, loader-set variables with their C types, constants worth
planting in inputs). Same seed, same source.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from cgen_idioms import IdiomsMixin

XDP = "xdp"
TC = "tc"
SOCKET = "socket"
RAW_TP = "raw_tp"
PROG_TYPES = (XDP, TC, SOCKET, RAW_TP)
SECTIONS = {XDP: "xdp", TC: "tc", SOCKET: "socket", RAW_TP: "raw_tp/sys_enter"}
CTX_TYPES = {XDP: "struct xdp_md", TC: "struct __sk_buff", SOCKET: "struct __sk_buff",
             RAW_TP: "struct bpf_raw_tracepoint_args"}
PROG_NAME = "prog"

ARR_ENTRIES = 8  # arr: array of u64 (its values are inputs)
HASH_ENTRIES = 16  # hmap: hash of u32 -> u64 (its elements are inputs)
# loader-set variables: name -> (C type, bytes); each program declares the ones it uses
KNOBS = {"knob_u8": ("__u8", 1), "knob_u16": ("__u16", 2), "knob_u32": ("__u32", 4),
         "knob_small": ("__u8", 1)}

PRELUDE = """\
#include "common.h"

struct {
\t__uint(type, BPF_MAP_TYPE_ARRAY);
\t__uint(max_entries, %(arr)d);
\t__type(key, __u32);
\t__type(value, __u64);
} arr SEC(".maps");

struct {
\t__uint(type, BPF_MAP_TYPE_HASH);
\t__uint(max_entries, %(hash)d);
\t__type(key, __u32);
\t__type(value, __u64);
} hmap SEC(".maps");

struct cbctx {
\t__u64 acc;
\t__u64 n;
\t__u32 pos;
\t__u32 lim;
};

__u64 sink;

static __always_inline __u64 arr_val(__u32 k)
{
\t__u64 *v = bpf_map_lookup_elem(&arr, &k);

\treturn v ? *v : 0;
}

static __always_inline __u64 hmap_val(__u32 k)
{
\t__u64 *v = bpf_map_lookup_elem(&hmap, &k);

\treturn v ? *v : 0;
}
"""

PKT_READERS = {
    # direct packet access behind a bounds check (XDP, TC)
    "direct": """
static __always_inline __u64 rd8(void *data, void *data_end, __u32 off)
{
\t__u8 *p = data + off;

\tif ((void *)(p + 1) > data_end)
\t\treturn 0;
\treturn *p;
}

static __always_inline __u64 rd16(void *data, void *data_end, __u32 off)
{
\t__u16 *p = data + off;

\tif ((void *)(p + 1) > data_end)
\t\treturn 0;
\treturn bpf_ntohs(*p);
}
""",
    # socket filters read through bpf_skb_load_bytes
    "load_bytes": """
static __always_inline __u64 rd8(struct __sk_buff *skb, __u32 off)
{
\t__u8 b = 0;

\tif (bpf_skb_load_bytes(skb, off, &b, 1))
\t\treturn 0;
\treturn b;
}

static __always_inline __u64 rd16(struct __sk_buff *skb, __u32 off)
{
\t__u16 h = 0;

\tif (bpf_skb_load_bytes(skb, off, &h, 2))
\t\treturn 0;
\treturn bpf_ntohs(h);
}
""",
}


@dataclass(frozen=True)
class CProgram:
    seed: int
    prog_type: str
    source: str
    knobs: tuple[str, ...]  # loader-set variables it declares (KNOBS names)
    constants: tuple[int, ...]  # compare and bound constants, for planting in inputs
    features: tuple[str, ...]  # which constructs it uses (for coverage figures)
    strings: tuple[bytes, ...] = ()  # string constants, for planting in the strs map


@dataclass
class _Gen(IdiomsMixin):
    rng: random.Random
    kind: str
    idioms: bool = True  # also the idioms of cgen_idioms.py
    funcs: list[str] = field(default_factory=list)
    knobs: set[str] = field(default_factory=set)
    consts: set[int] = field(default_factory=set)
    feats: set[str] = field(default_factory=set)
    counter: int = 0
    budget: int = 22  # statements left in the whole program
    in_sub: bool = False  # emitting a subprogram: no packet pointers, no ctx
    decls: dict[str, str] = field(default_factory=dict)  # cgen_idioms.DECLS it needs
    strings: set[bytes] = field(default_factory=set)
    tail_done: bool = False

    def name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def const(self, lo: int, hi: int) -> int:
        value = self.rng.randint(lo, hi)
        self.consts.add(value)
        return value

    # -- values -----------------------------------------------------------------
    def pkt_byte(self, wide: bool = False) -> str:
        off = self.const(0, 70)
        fn = "rd16" if wide else "rd8"
        if self.kind in (XDP, TC):
            return f"{fn}(data, data_end, {off})"
        if self.kind == SOCKET:
            return f"{fn}(ctx, {off})"
        shift = self.rng.choice((0, 8, 16, 32))
        return f"((ctx->args[{self.rng.randint(0, 5)}] >> {shift}) & 0x{'ffff' if wide else 'ff'})"

    def ctx_field(self) -> str:
        if self.kind == XDP:
            return self.rng.choice(("ctx->ingress_ifindex", "ctx->rx_queue_index"))
        if self.kind in (TC, SOCKET):
            return self.rng.choice(("ctx->len", "ctx->mark", "ctx->priority", "ctx->cb[0]"))
        return f"ctx->args[{self.rng.randint(0, 5)}]"

    def knob(self, small_only: bool = False) -> str:
        name = "knob_small" if small_only else self.rng.choice(tuple(KNOBS))
        self.knobs.add(name)
        self.feats.add("knob")
        return name

    def value(self, scope: list[str]) -> str:
        """A u64-valued expression the program can compute here."""
        r = self.rng.random()
        if self.in_sub:
            choices = ["a", "c->acc", "c->n", f"arr_val({self.rng.randint(0, ARR_ENTRIES)})"]
            return self.rng.choice(choices + scope)
        if r < 0.35:
            return self.pkt_byte(self.rng.random() < 0.3)
        if r < 0.5:
            return self.ctx_field()
        if r < 0.6:
            return self.knob()
        if r < 0.75:
            self.feats.add("map_value")
            if self.rng.random() < 0.6:
                return f"arr_val({self.rng.randint(0, ARR_ENTRIES)})"
            return f"hmap_val({self.const(0, 5)})"
        if r < 0.85 and scope:
            return self.rng.choice(scope)
        return self.rng.choice(("acc", "c.acc", "c.n"))

    def cond(self, scope: list[str]) -> str:
        v = self.value(scope)
        op = self.rng.choice(("==", "!=", "<", ">", "<=", ">="))
        if self.rng.random() < 0.3:
            return f"(({v}) & {self.const(1, 15)}) {op} {self.const(0, 8)}"
        return f"({v}) {op} {self.const(0, 300)}"

    # -- bounds ---------------------------------------------------------------------
    def bound(self, scope: list[str], outer: str | None) -> tuple[str, list[str]]:
        """A loop bound (an expression, and statements computing it first)."""
        r = self.rng.random()
        if outer is not None and r < 0.35:
            self.feats.add("nested_dependent")
            cap = self.const(4, 20)
            return self.rng.choice((outer, f"{outer} + 1",
                                    f"({outer} < {cap} ? {cap} - {outer} : 0)")), []
        if r < 0.45:
            self.feats.add("bound_const")
            return str(self.const(1, 24)), []
        if r < 0.6:
            self.feats.add("bound_knob")
            if outer is not None:  # keep nests cheap: the verifier walks every round
                return f"({self.knob()} & {self.const(1, 15)})", []
            return self.knob(small_only=self.rng.random() < 0.5), []
        n = self.name("n")
        src = self.value(scope)
        if self.rng.random() < 0.5:
            self.feats.add("bound_mask")
            return n, [f"__u32 {n} = ({src}) & {self.rng.choice((3, 7, 15, 31))};"]
        self.feats.add("bound_min")
        cap = self.const(2, 30)
        return n, [f"__u32 {n} = {src};", f"if ({n} > {cap})", f"\t{n} = {cap};"]

    # -- statements -------------------------------------------------------------------
    def block(self, depth: int, scope: list[str], outer: str | None = None,
              in_loop: bool = False) -> list[str]:
        out: list[str] = []
        for _ in range(self.rng.randint(1, 3 if depth else 5)):
            if self.budget <= 0:
                break
            self.budget -= 1
            out += self.stmt(depth, scope, outer, in_loop)
        return out or ["acc += 1;"]

    def stmt(self, depth: int, scope: list[str], outer: str | None,
             in_loop: bool) -> list[str]:
        kinds = ["assign", "assign", "if", "loop", "loop"]
        if depth < 2:
            kinds += ["switch", "loop", "bpf_loop", "sized_helper"]
            if not self.in_sub:
                kinds += ["for_each", "iter", "call", "parse", "return"]
        if in_loop:
            kinds += ["break", "continue"]
        if depth == 0 and not self.in_sub:
            kinds += ["may_goto"]
        if self.idioms:
            kinds += self.idiom_kinds(depth)
        kind = self.rng.choice(kinds)
        return getattr(self, f"s_{kind}")(depth, scope, outer, in_loop)

    def s_assign(self, depth: int, scope: list[str], outer: str | None,
                 in_loop: bool) -> list[str]:
        target = "c->acc" if self.in_sub else self.rng.choice(("acc", "acc", "c.acc", "c.n"))
        op = self.rng.choice(("+=", "^=", "|=", "+=", "*="))
        return [f"{target} {op} {self.value(scope)};"]

    def s_if(self, depth: int, scope: list[str], outer: str | None, in_loop: bool) -> list[str]:
        self.feats.add("if")
        out = [f"if ({self.cond(scope)}) {{", *_ind(self.block(depth + 1, scope, outer,
                                                                  in_loop))]
        if self.rng.random() < 0.5:
            out += ["} else {", *_ind(self.block(depth + 1, scope, outer, in_loop))]
        return out + ["}"]

    def s_switch(self, depth: int, scope: list[str], outer: str | None,
                 in_loop: bool) -> list[str]:
        self.feats.add("switch")
        out = [f"switch (({self.value(scope)}) & 7) {{"]
        for case in sorted(self.rng.sample(range(8), self.rng.randint(2, 5))):
            body = self.block(depth + 1, scope, outer, False)
            # a declaration may not follow a label: the idioms' statements open with one
            out += [f"case {case}:", *(["{", *_ind(body), "}"] if self.idioms else _ind(body))]
            if self.rng.random() < 0.8:
                out.append("\tbreak;")
        out += ["default:", f"\tacc += {self.const(1, 9)};", "}"]
        return out

    def s_return(self, depth: int, scope: list[str], outer: str | None,
                 in_loop: bool) -> list[str]:
        self.feats.add("early_return")
        return [f"if ({self.cond(scope)})", f"\treturn {self.ret()};"]

    def s_break(self, depth: int, scope: list[str], outer: str | None,
                in_loop: bool) -> list[str]:
        self.feats.add("break")
        return [f"if ({self.cond(scope)})", "\tbreak;"]

    def s_continue(self, depth: int, scope: list[str], outer: str | None,
                   in_loop: bool) -> list[str]:
        self.feats.add("continue")
        return [f"if ({self.cond(scope)})", "\tcontinue;"]

    def s_loop(self, depth: int, scope: list[str], outer: str | None,
               in_loop: bool) -> list[str]:
        if depth >= 3:
            return self.s_assign(depth, scope, outer, in_loop)
        self.feats.add("loop")
        i = self.name("i")
        bound, pre = self.bound(scope, outer)
        shape = self.rng.random()
        head: list[str] = []
        if bound.isdigit() and int(bound) <= 8 and self.rng.random() < 0.4:
            self.feats.add("pragma_unroll")
            head.append("#pragma unroll")
        body_scope = [*scope, i]
        if shape < 0.15 and self.kind in (XDP, TC) and not self.in_sub:
            self.feats.add("packet_loop")
            off = self.const(0, 40)
            body = [f"__u8 *p{i} = data + {off} + {i};",
                    f"if ((void *)(p{i} + 1) > data_end)", "\tbreak;",
                    f"acc += *p{i};", *self.block(depth + 1, body_scope, i, True)]
            loop = f"for (__u32 {i} = 0; {i} < {bound}; {i}++) {{"
        elif shape < 0.3:
            self.feats.add("loop_down")
            loop = f"for (__s32 {i} = {bound}; {i} > 0; {i}--) {{"
            body = self.block(depth + 1, body_scope, i, True)
        elif shape < 0.4:
            self.feats.add("loop_step2")
            loop = f"for (__u32 {i} = 0; {i} < {bound}; {i} += 2) {{"
            body = self.block(depth + 1, body_scope, i, True)
        elif shape < 0.5:
            self.feats.add("loop_while")
            return [*pre, f"__u32 {i} = 0;", *head, f"while ({i} < {bound}) {{",
                    *_ind(self.block(depth + 1, body_scope, i, False)), f"\t{i}++;", "}"]
        elif shape < 0.57:
            # a signed start from data: a negative one runs more rounds
            self.feats.add("loop_signed_start")
            start = f"(__s8){self.value(scope)}"
            loop = f"for (int {i} = {start}; {i} < {self.const(1, 24)}; {i}++) {{"
            body = self.block(depth + 1, body_scope, i, True)
        elif shape < 0.64:
            self.feats.add("loop_do_while")
            return [*pre, f"__u32 {i} = 0;", *head, "do {",
                    *_ind(self.block(depth + 1, body_scope, i, False)), f"	{i}++;",
                    f"}} while ({i} < {bound});"]
        elif shape < 0.7:
            # a byte-wide counter walking to a data-dependent end, wrapping past 255
            self.feats.add("loop_u8_wrap")
            return [*pre, f"__u8 {i} = {self.value(scope)};",
                    f"__u8 {i}e = {i} + ({self.value(scope)} & 15);",
                    f"while ({i} != {i}e) {{",
                    *_ind(self.block(depth + 1, body_scope, None, False)), f"	{i}++;", "}"]
        elif shape < 0.76 and self.kind in (XDP, TC) and not self.in_sub:
            # TLV walk: a cursor advanced by a length byte read from the packet
            self.feats.add("tlv_walk")
            cur = f"q{i}"
            return [*pre, f"void *{cur} = data + {self.const(0, 40)};", *head,
                    f"for (__u32 {i} = 0; {i} < {bound} && {i} < 16; {i}++) {{",
                    f"	if ({cur} + 2 > data_end)", "		break;",
                    f"	__u8 t{i} = *(__u8 *){cur};",
                    f"	if (t{i} == {self.const(0, 255)})", "		break;",
                    f"	acc += t{i};",
                    *_ind(self.block(depth + 1, body_scope, i, False)),
                    f"	{cur} += 2 + (*(__u8 *)({cur} + 1) & 15);", "}"]
        elif shape < 0.82:
            self.feats.add("loop_u64_and")
            loop = (f"for (__u64 {i} = 0; {i} < {self.value(scope)} && {i} < "
                    f"{self.const(1, 30)}; {i}++) {{")
            body = self.block(depth + 1, body_scope, i, True)
        else:
            loop = f"for (__u32 {i} = 0; {i} < {bound}; {i}++) {{"
            body = self.block(depth + 1, body_scope, i, True)
        return [*pre, *head, loop, *_ind(body), "}"]

    def s_may_goto(self, depth: int, scope: list[str], outer: str | None,
                   in_loop: bool) -> list[str]:
        """A loop the verifier cannot bound, cut by may_goto (cond_break); its real
        trip count comes from a map value kept small by the inputs."""
        self.feats.add("may_goto")
        i = self.name("g")
        return [f"__u64 {i} = 0;", f"__u64 {i}n = arr_val({self.rng.randint(0, 7)});",
                f"while ({i} < {i}n) {{", f"\tacc += {i} ^ {self.const(1, 99)};",
                f"\t{i}++;", "\tcond_break;", "}"]

    def s_iter(self, depth: int, scope: list[str], outer: str | None,
               in_loop: bool) -> list[str]:
        self.feats.add("iter")
        bound, pre = self.bound(scope, None)
        i = self.name("it")
        if self.rng.random() < 0.5:
            return [*pre, f"int {i};", f"bpf_for({i}, 0, {bound}) {{",
                    *_ind(self.block(depth + 1, [*scope, f"(__u64){i}"], None, False)), "}"]
        return [*pre, f"bpf_repeat({bound}) {{",
                *_ind(self.block(depth + 1, scope, None, False)), "}"]

    def s_bpf_loop(self, depth: int, scope: list[str], outer: str | None,
                   in_loop: bool) -> list[str]:
        self.feats.add("bpf_loop")
        cb = self.name("cb")
        stop = self.const(10, 400)
        body = [f"c->acc += idx * {self.const(1, 5)};"]
        if self.rng.random() < 0.5:
            body += [f"if (c->acc > {stop})", "\treturn 1;"]
        if self.rng.random() < 0.4:
            self.feats.add("callback_loop")
            body += ["for (__u32 j = 0; j < (c->lim & 7); j++)", "\tc->acc += j;"]
        body += [f"c->n = (c->n + idx) & {self.rng.choice((7, 15, 31))};",
                 "c->pos = idx;"]
        self.funcs.append("\n".join([f"static long {cb}(__u32 idx, void *ctx)", "{",
                                     "\tstruct cbctx *c = ctx;", "",
                                     *_ind(body), "\treturn 0;", "}"]))
        bound, pre = self.bound(scope, None)
        ptr = "c" if self.in_sub else "&c"
        return [*pre, f"bpf_loop({bound}, {cb}, {ptr}, 0);"]

    def s_for_each(self, depth: int, scope: list[str], outer: str | None,
                   in_loop: bool) -> list[str]:
        self.feats.add("for_each")
        cb = self.name("fe")
        m = "hmap" if self.rng.random() < 0.3 else "arr"
        # a hash map's walk order is the kernel's bucket order under a random hash
        # seed, which no model repeats: its callbacks do only what no order changes
        # (on whatever keys it holds: the interpreter walks exactly those)
        body = ["c->acc += *val;", f"c->lim {'|=' if m == 'hmap' else '='} "
                f"*val & {self.rng.choice((3, 7, 15))};"]
        if m == "arr" and self.rng.random() < 0.5:
            body += [f"if (*key == {self.const(0, 7)})", "\treturn 1;"]
        elif m == "hmap" and self.rng.random() < 0.5:
            body += [f"if (*key == {self.const(0, 8)})", "\tc->n ^= *val;"]
        if self.rng.random() < 0.4:
            body.append("*val += 1;")
        self.funcs.append("\n".join([
            f"static long {cb}(void *map, __u32 *key, __u64 *val, struct cbctx *c)", "{",
            *_ind(body), "\treturn 0;", "}"]))
        out = [f"bpf_for_each_map_elem(&{m}, {cb}, &c, 0);"]
        if self.rng.random() < 0.6:  # the callback's write steers the caller
            i = self.name("i")
            out += [f"for (__u32 {i} = 0; {i} < c.lim; {i}++)",
                    f"\tacc += {i} * {self.const(1, 9)};"]
        return out

    def s_sized_helper(self, depth: int, scope: list[str], outer: str | None,
                       in_loop: bool) -> list[str]:
        self.feats.add("sized_helper")
        buf = self.name("buf")
        ln = self.name("len")
        if "size_u8" not in self.feats and self.rng.random() < 0.5:
            self.feats.add("size_u8")
            size = [f"__u8 {ln} = {self.value(scope)};", f"if (!{ln})", f"\t{ln} = 1;"]
            nbytes = 256
        else:
            self.feats.add("size_clamp")
            cap = self.const(1, 48)
            size = [f"__u32 {ln} = {self.value(scope)};", f"if ({ln} > {cap})",
                    f"\t{ln} = {cap};", f"if ({ln} < 1)", f"\t{ln} = 1;"]
            nbytes = 48
        if self.in_sub or self.kind == RAW_TP:
            call = f"bpf_probe_read_kernel({buf}, {ln}, (void *)(long){self.value(scope)})"
        elif self.kind == XDP:
            call = f"bpf_xdp_load_bytes(ctx, 0, {buf}, {ln})"
        else:
            call = f"bpf_skb_load_bytes(ctx, 0, {buf}, {ln})"
        i = self.name("i")
        return [f"__u8 {buf}[{nbytes}] = {{}};", *size, f"if ({call} == 0) {{",
                f"\tfor (__u32 {i} = 0; {i} < ({buf}[0] & 7); {i}++)",
                f"\t\tacc += {buf}[{i} & 7];", "}"]

    def s_call(self, depth: int, scope: list[str], outer: str | None,
               in_loop: bool) -> list[str]:
        self.feats.add("call")
        f = self.name("sub")
        arg = self.value(scope)
        saved_budget = min(self.budget, 6)
        self.budget -= saved_budget
        if self.rng.random() < 0.5:
            self.feats.add("global_func")
            # a global function: the verifier checks it once, for any arguments
            self.in_sub = True
            inner_budget, self.budget = self.budget, saved_budget
            body = self.block(1, [])
            self.budget, self.in_sub = inner_budget, False
            self.funcs.append("\n".join([
                f"__noinline int {f}(__u64 a, struct cbctx *c)", "{",
                "\t__u64 acc = 0;", "", "\tif (!c)", "\t\treturn 0;",
                *_ind(body), "\tc->n += acc;", "\treturn acc & 0xff;", "}"]))
        else:
            self.feats.add("static_func")
            self.in_sub = True
            inner_budget, self.budget = self.budget, saved_budget
            body = self.block(1, [])
            self.budget, self.in_sub = inner_budget, False
            self.funcs.append("\n".join([
                f"static __noinline int {f}(__u64 a, struct cbctx *c)", "{",
                "\t__u64 acc = 0;", "", *_ind(body), "\tc->n += acc;",
                "\treturn acc & 0xff;", "}"]))
        return [f"acc += {f}({arg}, &c);"]

    def s_parse(self, depth: int, scope: list[str], outer: str | None,
                in_loop: bool) -> list[str]:
        """Ethernet, IPv4 with its variable header length, then TCP/UDP ports."""
        if self.kind not in (XDP, TC):
            return self.s_assign(depth, scope, outer, in_loop)
        self.feats.add("parse")
        r = self.ret()
        port = self.const(1, 1024)
        return [
            "{",
            "\tstruct eth_hdr *eth = data;",
            "\tif ((void *)(eth + 1) > data_end)", f"\t\treturn {r};",
            "\tif (eth->proto == bpf_htons(ETH_P_IP)) {",
            "\t\tstruct ip4_hdr *ip = (void *)(eth + 1);",
            "\t\tif ((void *)(ip + 1) > data_end)", f"\t\t\treturn {r};",
            "\t\t__u32 hl = (ip->ver_ihl & 15) * 4;",
            "\t\tif (hl < sizeof(*ip))", f"\t\t\treturn {r};",
            "\t\tstruct udp_hdr *l4 = (void *)ip + hl;",
            "\t\tif ((void *)(l4 + 1) > data_end)", f"\t\t\treturn {r};",
            "\t\tacc += ip->protocol;",
            f"\t\tif (l4->dest == bpf_htons({port})) {{",
            *_ind(self.block(depth + 1, scope, outer, False), 3),
            "\t\t}",
            "\t}",
            "}",
        ]

    def ret(self) -> str:
        if self.in_sub:
            return "0"
        return {XDP: self.rng.choice(("XDP_PASS", "XDP_DROP")), TC: "0", SOCKET: "0",
                RAW_TP: "0"}[self.kind]


def _ind(lines: list[str], n: int = 1) -> list[str]:
    return ["\t" * n + line if line else line for line in lines]


def generate(seed: int, idioms: bool = True) -> CProgram:
    """The program of a seed; idioms=False: without cgen_idioms.py's statements (the
    programs of the first runs, seed for seed)."""
    rng = random.Random(seed)
    kind = rng.choice(PROG_TYPES)
    g = _Gen(rng, kind, idioms)
    if idioms:  # fewer statements: the idioms are heavier for the verifier
        g.budget = 16
    body = g.block(0, [])
    knob_defaults = {name: rng.randint(0, 40) for name in sorted(g.knobs)}
    knob_decls = [f"const volatile {KNOBS[k][0]} {k} = {v};" for k, v in knob_defaults.items()]
    if kind == XDP:
        final = "return (acc & 1) ? XDP_PASS : XDP_DROP;"
    elif kind == RAW_TP:
        final = "sink = acc;\n\treturn 0;"
    else:
        final = "return acc & 0xff;"
    head = [f'SEC("{SECTIONS[kind]}")', f"int {PROG_NAME}({CTX_TYPES[kind]} *ctx)", "{"]
    if kind in (XDP, TC):
        head += ["\tvoid *data = (void *)(long)ctx->data;",
                 "\tvoid *data_end = (void *)(long)ctx->data_end;"]
    head += ["\tstruct cbctx c = {};", "\t__u64 acc = 0;", ""]
    reader = PKT_READERS["direct"] if kind in (XDP, TC) else \
        PKT_READERS["load_bytes"] if kind == SOCKET else ""
    source = "\n".join([
        f"// cgen seed {seed}: {kind}", PRELUDE % {"arr": ARR_ENTRIES, "hash": HASH_ENTRIES},
        *g.decls.values(), *knob_decls, reader, *(f + "\n" for f in g.funcs),
        *head, *_ind(body), "\tsink += c.acc + c.n;", f"\t{final}", "}", ""])
    return CProgram(seed, kind, source, tuple(sorted(g.knobs)), tuple(sorted(g.consts)),
                    tuple(sorted(g.feats)), tuple(sorted(g.strings)))
