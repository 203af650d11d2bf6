"""bpfbudget.toml: parsing, units, and one located message per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpflint.budget.config import dotted, find_config, key_lines, load_config
from bpflint.budget.units import format_ns, parse_allowance, parse_time_ns
from bpflint.errors import BpfLintError

FULL = """\
# a complete example
baseline = "bpf-baseline.json"
warn_only = false

[analyze]
objects = [
    "build/*.bpf.o",
    "extra/**/*.o",
]
sources = ["src/*.bpf.c"]

[build]
clang = "clang-19"
flags = ["-mcpu=v3"]
include_dirs = ["include"]
defines = ["DEBUG=0"]

[regression]
allowed = "5%"
unbounded = "warn"
unmatched = "fail"

[[budget]]
type = "xdp"
max_insns = 2000
max_time = "1.5us"

[[budget]]
section = "tracepoint/syscalls/*"
max_time = "800ns"

[[budget]]
max_insns = 100000

[tail_calls]
jmp_table = ["tail_a", "tail_b"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bpfbudget.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(BpfLintError) as info:
        load_config(write(tmp_path, text))
    return str(info.value)


# ---------------------------------------------------------------- units

@pytest.mark.parametrize(("text", "ns"), [
    ("800ns", 800.0), ("1.5us", 1500.0), ("1.5µs", 1500.0), ("1.5\u03bcs", 1500.0),
    ("2ms", 2e6), ("0.5 s", 5e8), (".5us", 500.0),
])
def test_parse_time(text: str, ns: float) -> None:
    assert parse_time_ns(text) == pytest.approx(ns)


@pytest.mark.parametrize("text", ["1.5", "us", "1.5 sec", "-3ns", "1,5us", ""])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="bad time"):
        parse_time_ns(text)


def test_allowances() -> None:
    pct = parse_allowance("5%")
    assert pct.percent == 5.0
    assert not pct.insns_excess(1000, 1050) and pct.insns_excess(1000, 1051)
    assert pct.ns_excess(100.0, 106.0)
    insns = parse_allowance("+200 insns")
    assert insns.insns == 200 and not insns.insns_excess(1000, 1200)
    assert insns.insns_excess(1000, 1201) and not insns.ns_excess(1.0, 1e9)
    ns = parse_allowance("+50ns")
    assert ns.ns == 50.0 and ns.ns_excess(100.0, 151.0) and not ns.insns_excess(1, 10**6)
    assert parse_allowance("+1.5us").ns == 1500.0
    for bad in ("5", "five%", "+200 bytes", "-5%", "5% or", "5% or 6%", "5% and +8 insns"):
        with pytest.raises(ValueError, match="bad regression allowance"):
            parse_allowance(bad)


def test_combined_allowance_passes_within_either_limit() -> None:
    both = parse_allowance("5% or +8 insns or +20ns")
    assert (both.percent, both.insns, both.ns) == (5.0, 8, 20.0)
    # clang 14 vs 19 on tc-tailcall's stage_icmp: 52 -> 55 insns is +5.8% but +3
    assert not both.insns_excess(52, 55) and not both.insns_excess(52, 60)
    assert both.insns_excess(52, 61)  # +9 insns and +17.3%: outside both
    assert not both.insns_excess(1000, 1050)  # +50 insns but exactly +5%
    assert both.insns_excess(1000, 1051)
    assert not both.ns_excess(100.0, 120.0) and both.ns_excess(100.0, 120.1)
    assert not both.ns_excess(1000.0, 1050.0) and both.ns_excess(1000.0, 1050.1)
    only_insns = parse_allowance("+8 insns")
    assert not only_insns.ns_excess(1.0, 1e9)  # an absolute amount: its own measure only


def test_exactly_at_the_percentage_passes() -> None:
    """100 * 1.15 is 114.99999999999999 in floats: +15% of 100 must still allow 115."""
    assert not parse_allowance("15%").insns_excess(100, 115)
    assert parse_allowance("15%").insns_excess(100, 116)
    assert not parse_allowance("2.5%").insns_excess(120, 123)
    assert not parse_allowance("10%").ns_excess(0.3, 0.33)
    assert not parse_allowance("2.5%").insns_excess(40, 41)


def test_format_ns() -> None:
    assert [format_ns(v) for v in (12.34, 850, 1500, 2.5e6, 3e9)] == [
        "12.3ns", "850ns", "1.50us", "2.50ms", "3.00s"]


# ---------------------------------------------------------------- key lines

def test_key_lines_tables_arrays_and_multiline_values() -> None:
    lines = key_lines(FULL)
    assert lines[("baseline",)] == 2
    assert lines[("analyze",)] == 5
    assert lines[("analyze", "objects")] == 6
    assert lines[("analyze", "objects", 0)] == 7
    assert lines[("analyze", "objects", 1)] == 8
    assert lines[("analyze", "sources")] == 10
    assert lines[("budget", 0)] == 23
    assert lines[("budget", 1, "max_time")] == 30
    assert lines[("budget", 2, "max_insns")] == 33
    assert lines[("tail_calls", "jmp_table")] == 36


def test_key_lines_ignores_multiline_strings_and_handles_quoted_dotted_keys() -> None:
    text = 'a = """\nfake = 1\n"""\n[t]\n"q.k" = 1\nx.y = 2\n'
    lines = key_lines(text)
    assert ("fake",) not in lines
    assert lines[("t", "q.k")] == 5
    assert lines[("t", "x", "y")] == 6


def test_dotted_numbers_tables_from_one() -> None:
    assert dotted(("budget", 1, "max_time")) == "budget[2].max_time"


# ---------------------------------------------------------------- loading

def test_full_example_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL))
    assert config.baseline == tmp_path / "bpf-baseline.json"
    assert config.objects == ("build/*.bpf.o", "extra/**/*.o")
    assert config.sources == ("src/*.bpf.c",)
    assert config.build.clang == "clang-19"
    assert config.build.include_dirs == (tmp_path / "include",)
    assert config.build.defines == ("DEBUG=0",)
    assert config.allowance is not None and config.allowance.percent == 5.0
    assert (config.unbounded, config.unmatched) == ("warn", "fail")
    xdp, tp, default = config.budgets
    assert (xdp.type, xdp.max_insns, xdp.max_ns, xdp.line) == ("xdp", 2000, 1500.0, 23)
    assert tp.section == "tracepoint/syscalls/*" and tp.max_ns == 800.0
    assert default.matchers == {} and default.label.endswith("default)")
    assert config.tail_calls == {"jmp_table": ("tail_a", "tail_b")}


def test_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.budgets == () and config.allowance is None and config.baseline is None
    assert (config.unbounded, config.unmatched, config.warn_only) == ("fail", "warn", False)
    assert config.build_command == () and config.allow_empty is False


def test_analyze_build_and_allow_empty(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[analyze]\nobjects = ["build/*.o"]\n'
                                         'build = ["make", "-C", "bpf"]\nallow_empty = true\n'))
    assert config.build_command == ("make", "-C", "bpf") and config.allow_empty is True


@pytest.mark.parametrize(("text", "expected"), [
    # TOML syntax, with its line
    ("a = 1\n[[budget]\n", ":2: invalid TOML"),
    # unknown key with a suggestion
    ("[[budget]]\ntype = \"xdp\"\nmax_insn = 5\n",
     ":3: key 'budget[1].max_insn': unknown key; did you mean 'max_insns'?"),
    ("[regresion]\nallowed = \"5%\"\n",
     ":1: key 'regresion': unknown key; did you mean 'regression'?"),
    ("[analyze]\nbuild = \"make -C bpf\"\n",
     ":2: key 'analyze.build': expected a list of strings, got the string 'make -C bpf'"),
    ("[analyze]\nbuild = []\n",
     ":2: key 'analyze.build': expected a command as a list of arguments"),
    ("[analyze]\nallow_empty = \"yes\"\n",
     ":2: key 'analyze.allow_empty': expected true or false"),
    ("[analyze]\nobjects = []\nbaseline = \"b.json\"\n",
     ":3: key 'analyze.baseline': unknown key; top-level keys such as 'baseline'"),
    # wrong types
    ("[[budget]]\nmax_insns = \"2000\"\n",
     ":2: key 'budget[1].max_insns': expected an integer, got the string '2000'"),
    ("[[budget]]\nmax_insns = true\n", "expected an integer, got a boolean"),
    ("[analyze]\nobjects = \"build/*.o\"\n", ":2: key 'analyze.objects': expected a list"),
    ("warn_only = \"yes\"\n", ":1: key 'warn_only': expected true or false"),
    ("budget = 3\n", "expected an array of tables"),
    # units and percentages
    ("[[budget]]\ntype = \"xdp\"\n\nmax_time = \"1.5 sec\"\n",
     ":4: key 'budget[1].max_time': bad time '1.5 sec'"),
    ("[regression]\nallowed = \"five%\"\n",
     ":2: key 'regression.allowed': bad regression allowance 'five%'"),
    ("[regression]\nunbounded = \"fial\"\n",
     ":2: key 'regression.unbounded': expected \"fail\", \"warn\" or \"ignore\""),
    # budget shape
    ("[[budget]]\ntype = \"xdp\"\n", ":1: key 'budget[1]': a [[budget]] needs max_insns"),
    ("[[budget]]\nmax_insns = 0\n", "must be a positive integer"),
    ("[[budget]]\nmax_insns = 1\n[[budget]]\nmax_insns = 2\n",
     ":3: key 'budget[2]': a second default budget"),
    ("[tail_calls]\njmp = \"a\"\n", ":2: key 'tail_calls.jmp': expected a list of program names"),
    ("cost_table = \"nope.toml\"\n", ":1: key 'cost_table': no such file"),
])
def test_each_mistake_is_one_located_message(tmp_path: Path, text: str, expected: str) -> None:
    message = error_of(tmp_path, text)
    assert message.startswith(str(tmp_path / "bpfbudget.toml") + ":")
    assert expected in message
    assert "\n" not in message


def test_globs_that_match_nothing_point_at_their_line(tmp_path: Path) -> None:
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "a.bpf.o").write_bytes(b"")
    config = load_config(write(tmp_path, '[analyze]\nobjects = [\n  "build/*.o",\n'
                               '  "missing/*.o",\n]\n'))
    with pytest.raises(BpfLintError, match=r":4: key 'analyze.objects\[2\]': glob "
                                           r"'missing/\*.o' matches no file"):
        config.expand("objects")
    ok = load_config(write(tmp_path, '[analyze]\nobjects = ["build/*.o", "build/a.*"]\n'))
    assert ok.expand("objects") == (tmp_path / "build" / "a.bpf.o",)


def test_unreadable_and_missing_config(tmp_path: Path) -> None:
    with pytest.raises(BpfLintError, match="no such budget file"):
        find_config(tmp_path / "nope.toml")
    bad = tmp_path / "bpfbudget.toml"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(BpfLintError, match="not UTF-8"):
        load_config(bad)


# ------------------------------------------ parsed documents kept in the result cache

def test_a_kept_document_is_used_only_for_the_same_text(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bpflint.budget import config as config_module
    from bpflint.cost.table_ready import Remembered

    budget = tmp_path / "bpfbudget.toml"
    budget.write_text(FULL)
    plain = load_config(budget)
    parsed: list[str] = []
    real = config_module.toml_document

    def counting(path: Path, text: str) -> dict:
        parsed.append(text)
        return real(path, text)

    monkeypatch.setattr(config_module, "toml_document", counting)
    kept = Remembered(str(tmp_path / "cache" / "toml"))
    first = load_config(budget, kept)
    assert len(parsed) == 1 and first == plain  # as without a store
    assert load_config(budget, kept) == first and len(parsed) == 1  # kept: not parsed
    budget.write_text(FULL.replace('max_time = "1.5us"', 'max_time = "2us"'))
    edited = load_config(budget, kept)
    assert len(parsed) == 2 and edited != first  # another text: parsed (and kept)
    [*files] = (tmp_path / "cache" / "toml").iterdir()
    assert len(files) == 2
    for file in files:
        file.write_bytes(b"damaged")
    assert load_config(budget, kept) == edited and len(parsed) == 3
    # mistakes are still located, and nothing is kept for them
    budget.write_text(FULL + "\n[[budget]\n")
    with pytest.raises(BpfLintError, match=r"bpfbudget.toml:\d+: invalid TOML"):
        load_config(budget, kept)
    assert len(list((tmp_path / "cache" / "toml").iterdir())) == 2


def test_an_unwritable_store_only_costs_the_parse(tmp_path: Path) -> None:
    from bpflint.cost.table_ready import Remembered

    budget = tmp_path / "bpfbudget.toml"
    budget.write_text(FULL)
    (tmp_path / "file").write_text("")
    kept = Remembered(str(tmp_path / "file" / "toml"))  # a file where a directory goes
    assert load_config(budget, kept) == load_config(budget)
