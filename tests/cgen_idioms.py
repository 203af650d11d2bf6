"""More idioms for the C-level fuzzer's generator (cgen_gen.py), from real projects.

Mixed into cgen_gen's generator when ``generate(seed, idioms=True)`` (the default);
``idioms=False`` gives the first generator's programs, seed for seed:

- the ``continue`` family: ``for`` loops whose counter update follows the continue
  target, ``while`` loops whose counter moves in several branches, loops with a second,
  data-dependent exit on a byte indexed by the counter;
- packet walks as Cilium, Katran and xdp-tools write them: IPv6 extension headers and
  TCP options (a bounded ``for`` with a data-dependent ``break``, an offset advanced by
  packet bytes and re-checked against data_end every round), stacked VLAN tags;
- a per-CPU array scratch buffer (Falco, Tetragon): ``bpf_probe_read_kernel`` and
  ``bpf_probe_read_kernel_str`` into it at offsets accumulated across steps, sizes
  masked or loader-set, the returned length used to walk what was read;
  ``bpf_probe_read_user_str`` into a stack buffer;
- ring buffer reserve / submit / discard and output, ``bpf_perf_event_output``, with
  sizes bounded by a clamp or a type;
- ``bpf_tail_call`` into a statically initialised prog array;
- string loops: ``bpf_strncmp`` against a constant, manual comparisons up to a
  loader-set length; ``__builtin_memset`` / ``__builtin_memcpy`` that clang unrolls;
- global functions with scalar arguments called in a loop; a static subprogram called
  from a ``bpf_loop`` callback; a ``bpf_loop`` callback running ``bpf_loop`` itself, the
  inner one writing the caller's stack, the caller then looping on it;
- a switch over a packet byte with many cases; ``__builtin_expect``, likely/unlikely.
"""

from __future__ import annotations

import random

# declarations a program gets once when one of its statements needs them
DECLS = {
    "likely": """\
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
""",
    "scratch": """\
struct scratch_buf {
\t__u8 buf[512];
};

struct {
\t__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
\t__uint(max_entries, 1);
\t__type(key, __u32);
\t__type(value, struct scratch_buf);
} scratch SEC(".maps");
""",
    "strs": """\
#define STR_LEN 32
struct str_val {
\tchar s[STR_LEN];
};

struct {
\t__uint(type, BPF_MAP_TYPE_ARRAY);
\t__uint(max_entries, 4);
\t__type(key, __u32);
\t__type(value, struct str_val);
} strs SEC(".maps");
""",
    "rb": """\
struct rec {
\t__u64 a;
\t__u32 n;
\t__u8 d[32];
};

struct {
\t__uint(type, BPF_MAP_TYPE_RINGBUF);
\t__uint(max_entries, 1 << 16);
} rb SEC(".maps");
""",
    "events": """\
struct {
\t__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
\t__uint(key_size, sizeof(__u32));
\t__uint(value_size, sizeof(__u32));
} events SEC(".maps");
""",
}
STR_LEN = 32
STR_ENTRIES = 4
STR_ALPHABET = b"abcdefgh/._-"
# what the runner's inputs should contain for a feature (it builds the packets)
PACKET_SHAPES = ("ipv6_walk", "tcp_opts", "vlan_walk")


def _ind(lines: list[str], n: int = 1) -> list[str]:
    return ["\t" * n + line if line else line for line in lines]


class IdiomsMixin:
    """Statement makers (``s_<kind>``) for the idioms above; the generator supplies
    rng, kind, in_sub, funcs, feats, consts, knobs, block(), value(), cond(), bound(),
    const(), knob(), name(), pkt_byte(), ret()."""

    rng: random.Random
    kind: str
    in_sub: bool
    funcs: list[str]
    feats: set[str]
    decls: dict[str, str]
    strings: set[bytes]
    tail_done: bool

    # provided by the generator (cgen_gen._Gen)
    def block(self, depth: int, scope: list[str], outer: str | None = None,
              in_loop: bool = False) -> list[str]: ...
    def value(self, scope: list[str]) -> str: ...
    def cond(self, scope: list[str]) -> str: ...
    def bound(self, scope: list[str], outer: str | None) -> tuple[str, list[str]]: ...
    def const(self, lo: int, hi: int) -> int: ...
    def knob(self, small_only: bool = False) -> str: ...
    def name(self, prefix: str) -> str: ...
    def pkt_byte(self, wide: bool = False) -> str: ...
    def ret(self) -> str: ...

    def idiom_kinds(self, depth: int) -> list[str]:
        kinds = ["cont_loop", "multi_step_while", "two_exit_loop", "str_loop", "memops",
                 "big_switch", "expect_if"]
        if depth < 2:
            kinds += ["scratch", "read_str", "ringbuf", "gscalar_call"]
            if not self.in_sub:
                kinds += ["cb_static", "nested_cb", "perf_out"]
                if self.kind in ("xdp", "tc"):
                    kinds += ["ipv6_walk", "tcp_opts", "vlan_walk"]
        if depth == 0 and not self.in_sub and not self.tail_done:
            kinds.append("tail_call")
        return kinds

    def need(self, decl: str) -> None:
        self.decls[decl] = DECLS[decl]

    def byte_at(self, index: str) -> str:
        """A packet (or context) byte at a place that moves with a loop counter."""
        off = self.const(0, 40)
        if self.in_sub:
            return f"(c->acc >> ({index} & 63) & 0xff)"
        if self.kind in ("xdp", "tc"):
            return f"rd8(data, data_end, {off} + {index})"
        if self.kind == "socket":
            return f"rd8(ctx, {off} + {index})"
        return f"(ctx->args[{self.rng.randint(0, 5)}] >> ({index} & 63) & 0xff)"

    # -- the continue family ------------------------------------------------------------
    def s_cont_loop(self, depth: int, scope: list[str], outer: str | None,
                    in_loop: bool) -> list[str]:
        """for (...; i++) { if (data) continue; ... }: the update after the target."""
        if depth >= 3:
            return [f"acc += {self.value(scope)};"]
        self.feats.add("cont_loop")
        i = self.name("i")
        bound, pre = self.bound(scope, outer)
        first = [f"\tif ({self.byte_at(i)} {self.rng.choice(('<', '>', '=='))} "
                 f"{self.const(0, 255)})", "\t\tcontinue;"]
        body = self.block(depth + 1, [*scope, i], i, True)
        if self.rng.random() < 0.5:  # a second continue further down
            body += [f"if ({self.cond([*scope, i])})", "\tcontinue;", f"acc += {i};"]
        return [*pre, f"for (__u32 {i} = 0; {i} < {bound}; {i}++) {{", *first,
                *_ind(body), "}"]

    def s_multi_step_while(self, depth: int, scope: list[str], outer: str | None,
                           in_loop: bool) -> list[str]:
        """while (i < n): the counter moves by different steps in different branches."""
        if depth >= 3:
            return [f"acc += {self.value(scope)};"]
        self.feats.add("multi_step_while")
        i = self.name("i")
        bound, pre = self.bound(scope, outer)
        steps = [self.rng.choice((1, 2, 3)) for _ in range(3)]
        return [*pre, f"__u32 {i} = 0;", f"while ({i} < {bound}) {{",
                f"\tif ({self.byte_at(i)} & {self.const(1, 7)}) {{",
                f"\t\tacc += {i};", f"\t\t{i} += {steps[0]};", "\t\tcontinue;", "\t}",
                *_ind(self.block(depth + 1, [*scope, i], None, False)),
                f"\tif ({self.cond(scope)})", f"\t\t{i} += {steps[1]};", "\telse",
                f"\t\t{i} += {steps[2]};", "}"]

    def s_two_exit_loop(self, depth: int, scope: list[str], outer: str | None,
                        in_loop: bool) -> list[str]:
        """A counted loop with a second exit on a byte the counter indexes."""
        if depth >= 3:
            return [f"acc += {self.value(scope)};"]
        self.feats.add("two_exit_loop")
        i = self.name("i")
        bound, pre = self.bound(scope, outer)
        exit_ = "break;" if self.in_sub or self.rng.random() < 0.6 else f"return {self.ret()};"
        return [*pre, f"for (__u32 {i} = 0; {i} < {bound}; {i}++) {{",
                f"\tif ({self.byte_at(i)} == {self.const(0, 255)})", f"\t\t{exit_}",
                *_ind(self.block(depth + 1, [*scope, i], i, True)), "}"]

    # -- packet walks -------------------------------------------------------------------
    def _eth(self) -> list[str]:
        r = self.ret()
        return ["\tstruct eth_hdr *eth = data;",
                "\tif ((void *)(eth + 1) > data_end)", f"\t\treturn {r};"]

    def s_ipv6_walk(self, depth: int, scope: list[str], outer: str | None,
                    in_loop: bool) -> list[str]:
        """IPv6 extension headers (Cilium's ipv6_hdrlen, Katran's parse_ipv6)."""
        self.feats.add("ipv6_walk")
        k = self.name("k")
        rounds = self.const(2, 8)
        r = self.ret()
        unroll = ["#pragma unroll"] if self.rng.random() < 0.4 else []
        short = f"return {r}" if self.rng.random() < 0.5 else "break"
        return [
            "{", *self._eth(),
            "\tif (eth->proto == bpf_htons(ETH_P_IPV6)) {",
            "\t\tstruct ip6_hdr *ip6 = (void *)(eth + 1);",
            "\t\tif ((void *)(ip6 + 1) > data_end)", f"\t\t\treturn {r};",
            "\t\t__u8 nh = ip6->nexthdr;", "\t\tvoid *cur = (void *)(ip6 + 1);",
            *_ind(unroll, 2),
            f"\t\tfor (__u32 {k} = 0; {k} < {rounds}; {k}++) {{",
            "\t\t\tstruct ip6_opt_hdr *oh = cur;",
            "\t\t\tif (nh != NEXTHDR_HOP && nh != NEXTHDR_ROUTING && nh != NEXTHDR_DEST &&",
            "\t\t\t    nh != NEXTHDR_FRAGMENT)", "\t\t\t\tbreak;",
            "\t\t\tif ((void *)(oh + 1) > data_end)", f"\t\t\t\t{short};",
            "\t\t\tif (nh == NEXTHDR_FRAGMENT)", "\t\t\t\tcur += 8;", "\t\t\telse",
            "\t\t\t\tcur += (oh->hdrlen + 1) * 8;", "\t\t\tnh = oh->nexthdr;",
            f"\t\t\tacc += nh ^ {k};",
            "\t\t}",
            "\t\tacc += nh;",
            f"\t\tif (nh == {self.const(0, 60)}) {{",
            *_ind(self.block(depth + 1, scope, None, False), 3),
            "\t\t}",
            "\t}", "}"]

    def s_tcp_opts(self, depth: int, scope: list[str], outer: str | None,
                   in_loop: bool) -> list[str]:
        """TCP options: EOL ends, NOP is one byte, others carry their length. In a
        global function of the context (verified once: in line, the verifier meets
        every exit state of the walk again in the code after it)."""
        self.feats.add("tcp_opts")
        f = self.name("tcpo")
        limit = str(self.rng.choice((8, 10, 16, 20)))
        mask = self.rng.choice(("63", "0x3f"))
        ctx_type = "struct xdp_md" if self.kind == "xdp" else "struct __sk_buff"
        self.funcs.append("\n".join([
            f"__noinline int {f}({ctx_type} *ctx)", "{",
            "\tvoid *data = (void *)(long)ctx->data;",
            "\tvoid *data_end = (void *)(long)ctx->data_end;", "\tint mss = 0;", "",
            "\tstruct eth_hdr *eth = data;",
            "\tif ((void *)(eth + 1) > data_end || eth->proto != bpf_htons(ETH_P_IP))",
            "\t\treturn 0;",
            "\tstruct ip4_hdr *ip = (void *)(eth + 1);",
            "\tif ((void *)(ip + 1) > data_end)", "\t\treturn 0;",
            "\t__u32 hl = (ip->ver_ihl & 15) * 4;",
            "\tif (hl < sizeof(*ip) || ip->protocol != IPPROTO_TCP_)", "\t\treturn 0;",
            "\tstruct tcp_hdr *th = (void *)ip + hl;",
            "\tif ((void *)(th + 1) > data_end)", "\t\treturn 0;",
            "\t__u32 olen = (th->doff_res >> 4) * 4;",
            "\tif (olen < sizeof(*th))", "\t\treturn 0;",
            "\tolen -= sizeof(*th);",
            "\t__u8 *opt = (void *)(th + 1);", "\t__u32 off = 0;",
            f"\tfor (__u32 k = 0; k < {limit}; k++) {{",
            "\t\tif (off >= olen)", "\t\t\tbreak;",
            f"\t\t__u8 *p = opt + (off & {mask});",
            "\t\tif ((void *)(p + 1) > data_end)", "\t\t\tbreak;",
            "\t\tif (*p == 0)", "\t\t\tbreak;",
            "\t\tif (*p == 1) {", "\t\t\toff++;", "\t\t\tcontinue;", "\t\t}",
            "\t\tif ((void *)(p + 2) > data_end)", "\t\t\tbreak;",
            "\t\t__u8 len = p[1];", "\t\tif (len < 2)", "\t\t\tbreak;",
            "\t\tif (*p == 2 && len == 4 && (void *)(p + 4) <= data_end)",
            "\t\t\tmss = ((__u32)p[2] << 8) | p[3];",
            "\t\toff += len;",
            "\t}", "\treturn mss;", "}"]))
        return [f"acc += {f}(ctx);", f"if (acc > {self.const(0, 1500)}) {{",
                *_ind(self.block(depth + 1, scope, None, False)), "}"]

    def s_vlan_walk(self, depth: int, scope: list[str], outer: str | None,
                    in_loop: bool) -> list[str]:
        """Stacked 802.1Q / 802.1ad tags (xdp-tools' parse_ethhdr_vlan)."""
        self.feats.add("vlan_walk")
        k = self.name("k")
        unroll = ["#pragma unroll"] if self.rng.random() < 0.5 else []
        return [
            "{", *self._eth(),
            "\t__u16 proto = eth->proto;", "\tvoid *cur = eth + 1;", *_ind(unroll),
            f"\tfor (int {k} = 0; {k} < {self.const(2, 6)}; {k}++) {{",
            "\t\tif (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(0x88A8))",
            "\t\t\tbreak;",
            "\t\tstruct vlan_hdr *vh = cur;",
            "\t\tif ((void *)(vh + 1) > data_end)", "\t\t\tbreak;",
            "\t\tproto = vh->proto;", "\t\tcur = vh + 1;",
            "\t\tacc += bpf_ntohs(vh->tci) & 0xfff;",
            "\t}",
            "\tif (proto == bpf_htons(ETH_P_IP)) {",
            *_ind(self.block(depth + 1, scope, None, False), 2),
            "\t}", "}"]

    # -- reads into buffers ------------------------------------------------------------
    def str_src(self) -> tuple[list[str], str]:
        """(statements, a source pointer): a string map value (readable: the kernel
        copies it) or a small number (never mapped: the read fails)."""
        if self.rng.random() < 0.7:
            self.need("strs")
            sv = self.name("sv")
            key = self.rng.randrange(STR_ENTRIES)
            return ([f"__u32 {sv}k = {key};",
                     f"struct str_val *{sv} = bpf_map_lookup_elem(&strs, &{sv}k);"],
                    f"({sv} ? (void *){sv}->s : (void *)(long)16)")
        return [], f"(void *)(long)(({self.value([])}) & 0xfff)"

    def s_scratch(self, depth: int, scope: list[str], outer: str | None,
                  in_loop: bool) -> list[str]:
        """A per-CPU scratch buffer filled in steps at an accumulated offset."""
        self.need("scratch")
        self.feats.add("scratch")
        sb = self.name("sb")
        out = [f"__u32 {sb}z = 0;",
               f"struct scratch_buf *{sb} = bpf_map_lookup_elem(&scratch, &{sb}z);",
               f"if ({sb}) {{", f"\t__u32 {sb}o = 0;"]
        for _ in range(self.rng.randint(1, 3)):
            pre, src = self.str_src()
            out += _ind(pre)
            dst = f"{sb}->buf + ({sb}o & 127)"
            if self.rng.random() < 0.5:
                self.feats.add("read_kernel_str")
                size = self.rng.choice(("STR_LEN", "64", "knob_small",
                                        f"({self.knob()} & 63)"))
                if size == "knob_small":
                    self.knob(small_only=True)
                if size == "STR_LEN":
                    self.need("strs")
                n = self.name("r")
                out += [f"\tlong {n} = bpf_probe_read_kernel_str({dst}, {size}, {src});",
                        f"\tif ({n} > 0)", f"\t\t{sb}o += {n};"]
            else:
                self.feats.add("read_kernel")
                n = self.name("n")
                mask = self.rng.choice((15, 31))
                out += [f"\t__u32 {n} = ({self.value(scope)}) & {mask};",
                        f"\tif (bpf_probe_read_kernel({dst}, {n}, {src}) == 0)",
                        f"\t\t{sb}o += {n};"]
        i = self.name("i")
        walk = self.rng.random()
        out += [f"\tfor (__u32 {i} = 0; {i} < ({sb}o & 255); {i}++) {{",
                f"\t\t__u8 ch = {sb}->buf[{i}];"]
        if walk < 0.4:
            out += ["\t\tif (!ch)", "\t\t\tcontinue;"]
        elif walk < 0.7:
            out += [f"\t\tif (ch == '{chr(self.rng.choice(STR_ALPHABET))}')", "\t\t\tbreak;"]
        out += ["\t\tacc += ch;", "\t}", "}"]
        return out

    def s_read_str(self, depth: int, scope: list[str], outer: str | None,
                   in_loop: bool) -> list[str]:
        """A string into a stack buffer, its returned length steering a loop."""
        self.feats.add("read_str")
        buf = self.name("s")
        size = self.rng.choice((16, 32, 64))
        user = self.rng.random() < 0.3
        if user:  # user memory: a small address, never mapped (the read fails)
            pre, src = [], f"(void *)(long)(({self.value(scope)}) & 0xfff)"
            call = "bpf_probe_read_user_str"
        else:
            pre, src = self.str_src()
            call = "bpf_probe_read_kernel_str"
        n = self.name("r")
        i = self.name("i")
        return [*pre, f"char {buf}[{size}] = {{}};",
                f"long {n} = {call}({buf}, sizeof({buf}), {src});",
                f"for (long {i} = 0; {i} < {n} && {i} < {size}; {i}++) {{",
                f"\tif ({buf}[{i}] == '/')", "\t\tacc += 7;", f"\tacc += {buf}[{i}];", "}"]

    # -- ring buffer, perf buffer, tail calls ------------------------------------------
    def s_ringbuf(self, depth: int, scope: list[str], outer: str | None,
                  in_loop: bool) -> list[str]:
        self.need("rb")
        self.feats.add("ringbuf")
        e = self.name("e")
        i = self.name("i")
        out = [f"struct rec *{e} = bpf_ringbuf_reserve(&rb, sizeof(struct rec), 0);",
               f"if ({e}) {{", f"\t{e}->a = acc;",
               f"\t{e}->n = ({self.value(scope)}) & 31;",
               f"\tfor (__u32 {i} = 0; {i} < {e}->n; {i}++)",
               f"\t\t{e}->d[{i} & 31] = {i} + acc;",
               f"\tif ({self.cond(scope)})", f"\t\tbpf_ringbuf_discard({e}, 0);", "\telse",
               f"\t\tbpf_ringbuf_submit({e}, 0);", "}"]
        if self.rng.random() < 0.5:
            self.feats.add("ringbuf_output")
            m = self.name("m")
            cap = self.const(1, 48)
            out += [f"__u8 {m}b[48] = {{}};", f"__u32 {m} = {self.value(scope)};",
                    f"if ({m} > {cap})", f"\t{m} = {cap};",
                    f"{m}b[0] = acc;",
                    f"if (bpf_ringbuf_output(&rb, {m}b, {m}, 0) == 0)",
                    f"\tacc += {m};"]
        return out

    def s_perf_out(self, depth: int, scope: list[str], outer: str | None,
                   in_loop: bool) -> list[str]:
        """bpf_perf_event_output; its result (an empty slot: -ENOENT) goes unused."""
        self.need("events")
        self.feats.add("perf_out")
        if self.rng.random() < 0.5:
            return ["bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &c, sizeof(c));"]
        m = self.name("m")
        return [f"__u8 {m}b[40] = {{}};", f"__u8 {m} = {self.value(scope)};",
                f"if ({m} > 40)", f"\t{m} = 40;", f"{m}b[1] = acc;",
                f"bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, {m}b, {m});"]

    def s_tail_call(self, depth: int, scope: list[str], outer: str | None,
                    in_loop: bool) -> list[str]:
        """A tail call into a prog array whose slot 1 (and maybe 2) holds a program
        with a loop of its own; other slots are empty (the call falls through)."""
        self.tail_done = True
        self.feats.add("tail_call")
        ctx_type = {"xdp": "struct xdp_md", "tc": "struct __sk_buff",
                    "socket": "struct __sk_buff",
                    "raw_tp": "struct bpf_raw_tracepoint_args"}[self.kind]
        sec = {"xdp": "xdp", "tc": "tc", "socket": "socket",
               "raw_tp": "raw_tp/sys_enter"}[self.kind]
        targets = ["tail1"] + (["tail2"] if self.rng.random() < 0.5 else [])
        slots = ", ".join(f"[{n + 1}] = (void *)&{t}" for n, t in enumerate(targets))
        decl = [f"int {t}({ctx_type} *ctx);" for t in targets] + [
            "struct {", "\t__uint(type, BPF_MAP_TYPE_PROG_ARRAY);", "\t__uint(max_entries, 4);",
            "\t__uint(key_size, sizeof(__u32));", "\t__array(values, int (void *));",
            f"}} jmp SEC(\".maps\") = {{ .values = {{ {slots} }} }};", ""]
        self.decls["jmp"] = "\n".join(decl)
        for t in targets:
            if self.kind in ("xdp", "tc"):
                head = ["\tvoid *data = (void *)(long)ctx->data;",
                        "\tvoid *data_end = (void *)(long)ctx->data_end;"]
                byte = f"rd8(data, data_end, {self.const(0, 60)})"
            elif self.kind == "socket":
                head, byte = [], f"rd8(ctx, {self.const(0, 40)})"
            else:
                head, byte = [], f"(ctx->args[{self.rng.randint(0, 5)}] & 0xff)"
            ret = {"xdp": "(acc & 1) ? XDP_PASS : XDP_DROP", "tc": "acc & 0xff",
                   "socket": "acc & 0xff", "raw_tp": "0"}[self.kind]
            self.funcs.append("\n".join([
                f'SEC("{sec}")', f"int {t}({ctx_type} *ctx)", "{", *head,
                f"\t__u64 acc = {self.const(1, 99)};", "",
                f"\tfor (__u32 i = 0; i < ({byte} & {self.rng.choice((7, 15, 31))}); i++)",
                f"\t\tacc += i ^ {self.const(1, 9)};",
                "\tsink += acc;" if self.kind == "raw_tp" else "", f"\treturn {ret};", "}"]))
        v = self.value(scope)
        # slot 1 always holds a program: most runs take the call
        index = self.rng.choice(("1", f"({v}) & 3", f"(({v}) & 1) + 1"))
        return [f"bpf_tail_call(ctx, &jmp, {index});"]

    # -- strings, memset / memcpy ------------------------------------------------------
    def s_str_loop(self, depth: int, scope: list[str], outer: str | None,
                   in_loop: bool) -> list[str]:
        self.need("strs")
        self.feats.add("str_loop")
        sv = self.name("sv")
        word = bytes(self.rng.choice(STR_ALPHABET) for _ in range(self.rng.randint(1, 12)))
        self.strings.add(word)
        lit = word.decode()
        out = [f"__u32 {sv}k = {self.rng.randrange(STR_ENTRIES)};",
               f"struct str_val *{sv} = bpf_map_lookup_elem(&strs, &{sv}k);", f"if ({sv}) {{"]
        if self.rng.random() < 0.5:
            self.feats.add("strncmp")
            pat = self.name("pat")
            self.decls[pat] = f'const char {pat}[] = "{lit}";\n'
            size = self.rng.choice((len(word), len(word) + 1, STR_LEN))
            out += [f"\tif (bpf_strncmp({sv}->s, {size}, {pat}) == 0) {{",
                    *_ind(self.block(depth + 1, scope, None, False), 2), "\t}"]
        else:
            self.feats.add("manual_strcmp")
            pat = self.name("pat")
            self.decls[pat] = f'const char {pat}[STR_LEN] = "{lit}";\n'
            i = self.name("i")
            lim = self.rng.choice((f"({self.knob()} & 31)", "STR_LEN - 1",
                                   f"knob_small && {i} < STR_LEN"))
            if "knob_small" in lim:
                self.knob(small_only=True)
            out += [f"\t__u32 {i};", f"\tfor ({i} = 0; {i} < {lim}; {i}++) {{",
                    f"\t\tif ({sv}->s[{i}] != {pat}[{i}])", "\t\t\tbreak;",
                    f"\t\tif (!{sv}->s[{i}])", "\t\t\tbreak;", "\t}",
                    f"\tif ({i} >= {len(word)}) {{",
                    *_ind(self.block(depth + 1, scope, None, False), 2), "\t}"]
        return out + ["}"]

    def s_memops(self, depth: int, scope: list[str], outer: str | None,
                 in_loop: bool) -> list[str]:
        """__builtin_memset / memcpy of fixed sizes (clang unrolls them into stores)."""
        self.feats.add("memops")
        b = self.name("mb")
        size = self.rng.choice((8, 16, 24, 40, 64, 100))
        out = [f"__u8 {b}[{size}];",
               f"__builtin_memset({b}, {self.rng.choice(('0', '0xff', '1'))}, sizeof({b}));"]
        if not self.in_sub and self.kind in ("xdp", "tc") and self.rng.random() < 0.6:
            off = self.const(0, 40)
            n = min(size, self.rng.choice((6, 14, 20, 40)))
            out += [f"if (data + {off + n} <= data_end)",
                    f"\t__builtin_memcpy({b}, data + {off}, {n});"]
        else:
            out += [f"__u64 {b}v = {self.value(scope)};",
                    f"__builtin_memcpy({b} + {self.rng.choice((0, 1, 3)) if size > 8 else 0}, "
                    f"&{b}v, sizeof({b}v));"]
        i = self.name("i")
        return out + [f"for (__u32 {i} = 0; {i} < ({b}[0] & 15) && {i} < {size}; {i}++)",
                      f"\tacc += {b}[{i}];"]

    # -- calls and callbacks -----------------------------------------------------------
    def s_gscalar_call(self, depth: int, scope: list[str], outer: str | None,
                       in_loop: bool) -> list[str]:
        """A global function with scalar arguments (the kernel checks it once, for
        any arguments) called in a loop."""
        self.feats.add("gscalar_call")
        f = self.name("gs")
        mask = self.rng.choice((3, 7, 15))
        stop = [f"\t\tif (y > {self.const(0, 300)})", "\t\t\treturn 1;"] \
            if self.rng.random() < 0.5 else []
        self.funcs.append("\n".join([
            f"__noinline int {f}(__u32 x, __u64 y)", "{", "\t__u64 acc = 0;", "",
            f"\tfor (__u32 j = 0; j < (x & {mask}); j++) {{", *stop,
            "\t\tacc += j ^ y;", "\t}", "\treturn acc & 0xff;", "}"]))
        i = self.name("i")
        bound, pre = self.bound(scope, None)
        return [*pre, f"for (__u32 {i} = 0; {i} < {bound}; {i}++)",
                f"\tacc += {f}({i} + {self.value(scope)}, {self.value(scope)});"]

    def s_cb_static(self, depth: int, scope: list[str], outer: str | None,
                    in_loop: bool) -> list[str]:
        """A static subprogram called from a bpf_loop callback."""
        self.feats.add("cb_static")
        sf = self.name("sf")
        cb = self.name("cb")
        self.funcs.append("\n".join([
            f"static __noinline __u64 {sf}(__u64 v)", "{", "\t__u64 r = 0;", "",
            f"\tfor (__u32 j = 0; j < (v & {self.rng.choice((3, 7, 15))}); j++)",
            f"\t\tr += j ^ {self.const(1, 9)};", "\treturn r;", "}"]))
        stop = [f"\tif (c->acc > {self.const(10, 400)})", "\t\treturn 1;"] \
            if self.rng.random() < 0.5 else []
        self.funcs.append("\n".join([
            f"static long {cb}(__u32 idx, void *ctx)", "{", "\tstruct cbctx *c = ctx;", "",
            f"\tc->acc += {sf}(idx + c->n);", *stop,
            f"\tc->n = (c->n + idx) & {self.rng.choice((7, 15))};", "\treturn 0;", "}"]))
        bound, pre = self.bound(scope, None)
        return [*pre, f"bpf_loop({bound}, {cb}, &c, 0);"]

    def s_nested_cb(self, depth: int, scope: list[str], outer: str | None,
                    in_loop: bool) -> list[str]:
        """bpf_loop whose callback runs bpf_loop; the inner callback writes the
        caller's stack through the ctx pointer and the caller loops on it."""
        self.feats.add("nested_cb")
        inner = self.name("icb")
        outer_cb = self.name("ocb")
        self.funcs.append("\n".join([
            f"static long {inner}(__u32 idx, void *ctx)", "{", "\tstruct cbctx *c = ctx;", "",
            f"\tc->lim = (c->lim + idx + {self.const(1, 5)}) & {self.rng.choice((7, 15))};",
            "\tc->acc += idx;", "\treturn 0;", "}"]))
        self.funcs.append("\n".join([
            f"static long {outer_cb}(__u32 idx, void *ctx)", "{", "\tstruct cbctx *c = ctx;",
            "", f"\tbpf_loop((idx & {self.rng.choice((1, 3))}) + 1, {inner}, c, 0);",
            "\tc->pos = c->lim;", "\treturn 0;", "}"]))
        bound, pre = self.bound(scope, None)
        i = self.name("i")
        return [*pre, f"bpf_loop({bound}, {outer_cb}, &c, 0);",
                f"for (__u32 {i} = 0; {i} < c.{self.rng.choice(('lim', 'pos'))}; {i}++)",
                f"\tacc += {i} * {self.const(1, 9)};"]

    # -- branches ----------------------------------------------------------------------
    def s_big_switch(self, depth: int, scope: list[str], outer: str | None,
                     in_loop: bool) -> list[str]:
        """A switch over a packet byte with many sparse cases (compare chains or a
        binary search: BPF has no jump tables)."""
        self.feats.add("big_switch")
        subject = self.pkt_byte() if not self.in_sub else "(a & 0xff)"
        out = [f"switch ({subject}) {{"]
        for case in sorted(self.rng.sample(range(256), self.rng.randint(8, 30))):
            self.consts.add(case)
            out.append(f"case {case}:")
            if self.rng.random() < 0.2 and depth < 2:
                out += ["{", *_ind(self.block(depth + 1, scope, outer, False)), "}"]
            else:
                out.append(f"\tacc += {self.const(1, 99)};")
            if self.rng.random() < 0.85:
                out.append("\tbreak;")
        return out + ["default:", "\tacc ^= 1;", "}"]

    def s_expect_if(self, depth: int, scope: list[str], outer: str | None,
                    in_loop: bool) -> list[str]:
        self.need("likely")
        self.feats.add("expect_if")
        wrap = self.rng.choice(("likely", "unlikely", "__builtin_expect"))
        cond = self.cond(scope)
        test = f"__builtin_expect(!!({cond}), {self.rng.randint(0, 1)})" \
            if wrap == "__builtin_expect" else f"{wrap}({cond})"
        out = [f"if ({test}) {{", *_ind(self.block(depth + 1, scope, outer, in_loop))]
        if self.rng.random() < 0.5:
            out += ["} else {", *_ind(self.block(depth + 1, scope, outer, in_loop))]
        return out + ["}"]


# -- inputs that drive the idioms to their long paths (used by cgen_run.py) ----------
def _eth(proto: int, rng: random.Random) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(12)) + proto.to_bytes(2, "big")


def ipv6_packet(rng: random.Random) -> bytes:
    """Ethernet, IPv6, then a chain of extension headers (mostly the shortest, 8
    bytes), then TCP or UDP."""
    chain = [rng.choice((0, 43, 60, 44)) for _ in range(rng.randint(1, 10))]
    last = rng.choice((6, 17, rng.getrandbits(8)))
    ip6 = bytearray(40)
    ip6[0] = 0x60
    ip6[6] = chain[0]
    ip6[7] = 64
    out = bytearray(_eth(0x86DD, rng)) + ip6
    for n, kind in enumerate(chain):
        nxt = chain[n + 1] if n + 1 < len(chain) else last
        units = 0 if kind == 44 or rng.random() < 0.8 else rng.randint(1, 2)
        out += bytes([nxt, units]) + bytes(6 + 8 * units)
    return bytes(out + bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40))))


def tcp_opts_packet(rng: random.Random) -> bytes:
    """Ethernet, IPv4, TCP with up to 40 bytes of options: all NOP (the most rounds),
    NOPs then an MSS, or random kinds and lengths."""
    doff = rng.choice((15, 15, rng.randint(5, 15)))
    room = 4 * doff - 20
    style = rng.random()
    if style < 0.5:
        opts = bytearray([1]) * room
    elif style < 0.8:
        opts = bytearray([1]) * max(0, room - 4) + bytes([2, 4, 5, 0xB4])
    else:
        opts = bytearray()
        while len(opts) < room:
            kind = rng.choice((1, 1, 2, 3, 4, 8, 0))
            if kind <= 1:
                opts.append(kind)
            else:
                opts += bytes([kind, rng.choice((2, 3, 4, 10))]) + bytes(2)
    ip = bytearray(20)
    ip[0], ip[9] = 0x45, 6
    tcp = bytearray(20)
    tcp[12] = doff << 4
    out = _eth(0x0800, rng) + bytes(ip) + bytes(tcp) + bytes(opts[:room]).ljust(room, b"\1")
    return out + bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 20)))


def vlan_packet(rng: random.Random) -> bytes:
    """Ethernet with stacked 802.1Q / 802.1ad tags, then IPv4."""
    tags = rng.randint(1, 7)
    out = bytearray(_eth(rng.choice((0x8100, 0x88A8)), rng))
    for n in range(tags):
        proto = 0x0800 if n == tags - 1 else rng.choice((0x8100, 0x88A8))
        out += rng.getrandbits(16).to_bytes(2, "big") + proto.to_bytes(2, "big")
    ip = bytearray(rng.getrandbits(8) for _ in range(40))
    ip[0] = 0x45
    return bytes(out + ip)


PACKET_MAKERS = {"ipv6_walk": ipv6_packet, "tcp_opts": tcp_opts_packet,
                 "vlan_walk": vlan_packet}


def shaped_packet(rng: random.Random, features: tuple[str, ...]) -> bytes | None:
    """A packet for one of the program's packet walks (None: it has none)."""
    makers = [PACKET_MAKERS[f] for f in PACKET_SHAPES if f in features]
    return rng.choice(makers)(rng) if makers else None


def str_values(rng: random.Random, strings: tuple[bytes, ...]) -> tuple[bytes, ...]:
    """The strs map's values: the program's constants (exact, a prefix, longer), random
    words, a full 31 characters; always NUL-terminated within the value."""
    out = []
    for _ in range(STR_ENTRIES):
        r = rng.random()
        if strings and r < 0.5:
            word = rng.choice(strings)
            word = word[:rng.randint(0, len(word))] if rng.random() < 0.2 else word
            if rng.random() < 0.3:
                word += bytes(rng.choice(STR_ALPHABET) for _ in range(rng.randint(1, 8)))
        elif r < 0.75:
            word = bytes(rng.choice(STR_ALPHABET) for _ in range(rng.randint(0, 31)))
        else:
            word = bytes(rng.choice(STR_ALPHABET) for _ in range(STR_LEN - 1))
        out.append(word[:STR_LEN - 1].ljust(STR_LEN, b"\0"))
    return tuple(out)
