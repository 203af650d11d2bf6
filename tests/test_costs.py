"""Cost table parsing, lookups and error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpflint.cost.model import INSN_KEYS
from bpflint.cost.table_file import load_cost_table, parse_cost_table
from bpflint.errors import BpfLintError
from bpflint.isa.helper_ids import HELPER_NAMES
from bpflint.isa.insn import decode
from bpflint.isa.opcodes import AluOp
from bpflint.kernel import bytecode as bc

HEAD = """format = 1
[provenance]
kernel = "6.18"
cpu = "test"
date = "2025-01-01"
method = "hand-written"
[defaults]
helper_min_ns = 0.0
helper_max_ns = 1000.0
kfunc_min_ns = 0.0
kfunc_max_ns = 900.0
size_cap_bytes = 100
[insn]
"""
INSNS = "".join(f"{k} = {{ min_ns = 1.0, max_ns = 2.0 }}\n" for k in INSN_KEYS)
HELPERS = """
[helper.map_lookup_elem]
min_ns = 5.0
max_ns = 50.0
[helper.map_lookup_elem.map]
array = { min_ns = 1.0, max_ns = 3.0 }
[helper.probe_read_kernel]
min_ns = 10.0
max_ns = 20.0
per_unit_min_ns = 0.1
per_unit_max_ns = 0.5
max_units = 0
"""


def table(text: str = HEAD + INSNS + HELPERS):
    return parse_cost_table(text, "t.toml")


def one(code: bytes):
    return decode(code)[0]


def test_insn_lookups() -> None:
    t = table(HEAD + INSNS.replace("alu_div = { min_ns = 1.0, max_ns = 2.0 }",
                                   "alu_div = { min_ns = 3.0, max_ns = 9.0 }") + HELPERS)
    assert t.insn_ns(one(bc.alu64(0x30, 1, imm=3)), None) == (3.0, 9.0)
    assert t.insn_ns(one(bc.ldx(4, 1, 10, -8)), "stack") == (1.0, 2.0)


def test_helper_variants_sizes_and_missing() -> None:
    t = table()
    lookup = HELPER_NAMES.index("map_lookup_elem")
    assert t.helper_ns(lookup, "array", None) == (1.0, 3.0)
    assert t.helper_ns(lookup, None, None) == (5.0, 50.0)
    lo, hi = t.helper_ns(lookup, "lpm_trie", None)  # never calibrated: default max
    assert hi == 1000.0 and "map_lookup_elem[lpm_trie]" in t.missing()
    probe = HELPER_NAMES.index("probe_read_kernel")
    assert t.helper_ns(probe, None, (8, 16)) == pytest.approx((10.8, 28.0))
    assert t.helper_ns(probe, None, None) == pytest.approx((10.0, 70.0))  # cap 100 bytes
    assert t.helper_ns(HELPER_NAMES.index("get_stack"), None, None) == (0.0, 1000.0)
    assert "get_stack" in t.missing()
    assert t.kfunc_ns("bpf_x") == (0.0, 900.0) and "bpf_x" in t.missing()


def test_hash_maps_of_known_key_size_are_priced_on_their_key_line() -> None:
    keyed = HELPERS.replace(
        "array = { min_ns = 1.0, max_ns = 3.0 }",
        "array = { min_ns = 1.0, max_ns = 3.0 }\n"
        "hash = { min_ns = 4.0, max_ns = 40.0, key_base_max_ns = 8.0, "
        "per_key_byte_max_ns = 0.5 }")
    t = table(HEAD + INSNS + keyed)
    lookup = HELPER_NAMES.index("map_lookup_elem")
    assert t.helper_ns(lookup, "hash", None, 4) == (4.0, 10.0)
    assert t.helper_ns(lookup, "hash", None, 64) == (4.0, 40.0)
    assert t.helper_ns(lookup, "hash", None, 128) == (4.0, 72.0)  # the line goes on
    assert t.helper_ns(lookup, "hash", None, None) == (4.0, 40.0)  # unknown: max_ns
    assert t.helper_ns(lookup, "hash", None, 0) == (4.0, 40.0)  # no BTF: size 0
    assert t.helper_ns(lookup, "array", None, 4) == (1.0, 3.0)  # no line: max_ns
    half = keyed.replace(", per_key_byte_max_ns = 0.5", "")
    with pytest.raises(BpfLintError, match="per_key_byte_max_ns"):
        table(HEAD + INSNS + half)


def test_hot_caches_price_hash_maps_with_their_hot_max() -> None:
    cold_hot = HELPERS.replace(
        "max_ns = 50.0\n[helper.map_lookup_elem.map]",
        "max_ns = 500.0\nhot_max_ns = 50.0\n[helper.map_lookup_elem.map]").replace(
        "array = { min_ns = 1.0, max_ns = 3.0 }",
        "array = { min_ns = 1.0, max_ns = 3.0 }\n"
        "hash = { min_ns = 4.0, max_ns = 400.0, key_base_max_ns = 300.0, "
        "per_key_byte_max_ns = 2.0, hot_max_ns = 40.0 }")
    cold = table(HEAD + INSNS + cold_hot)
    assert cold.cpu_caches == "cold"
    hot = cold.with_cpu_caches("hot")
    assert hot.cpu_caches == "hot" and hot.digest != cold.digest  # never a cached result
    assert cold.with_cpu_caches("cold") is cold
    lookup = HELPER_NAMES.index("map_lookup_elem")
    # cold: the key line, else max_ns; hot: hot_max_ns, flat over key sizes
    assert cold.helper_ns(lookup, "hash", None, 4) == (4.0, 308.0)
    assert cold.helper_ns(lookup, "hash", None, None) == (4.0, 400.0)
    for key_size in (None, 4, 64):
        assert hot.helper_ns(lookup, "hash", None, key_size) == (4.0, 40.0)
    assert (cold.helper_ns(lookup, None, None), hot.helper_ns(lookup, None, None)) == \
        ((5.0, 500.0), (5.0, 50.0))
    # an entry without a hot figure prices the same either way
    assert hot.helper_ns(lookup, "array", None) == cold.helper_ns(lookup, "array", None)
    probe = HELPER_NAMES.index("probe_read_kernel")
    assert hot.helper_ns(probe, None, (8, 16)) == cold.helper_ns(probe, None, (8, 16))
    assert hot.insns == cold.insns
    with pytest.raises(BpfLintError, match="lost its cold figures"):
        hot.with_cpu_caches("cold")
    with pytest.raises(BpfLintError, match="cold, hot"):
        cold.with_cpu_caches("warm")
    for bad, message in (("hot_max_ns = 40.0 }", "hot_max_ns = 401.0 }"), "above max_ns"), \
            (("hot_max_ns = 40.0 }", "hot_max_ns = 3.0 }"), "below min_ns"):
        with pytest.raises(BpfLintError, match=message):
            table(HEAD + INSNS + cold_hot.replace(*bad))


def test_the_shipped_table_prices_hash_maps_cold_unless_asked() -> None:
    cold, hot = load_cost_table(None), load_cost_table(None, "hot")
    for helper in ("map_lookup_elem", "map_update_elem", "map_delete_elem"):
        for map_type in ("hash", "lru_hash", "percpu_hash", "lru_percpu_hash"):
            c = cold.helpers[helper].variant(map_type)
            h = hot.helpers[helper].variant(map_type)
            assert c is not None and h is not None, (helper, map_type)
            # measured both ways: the cold max is the bound, the hot one what was
            # the max before, and min the same hot figure in both
            assert c.hot_max_ns is not None and h.max_ns == c.hot_max_ns, (helper, map_type)
            assert c.min_ns == h.min_ns <= h.max_ns < c.max_for_key(4) <= c.max_for_key(64)
            assert c.max_for_key(64) <= c.max_ns + 1e-3  # an unknown key size: max_ns
        # an unknown map type or key size: the dearest cold figure
        plain = cold.helpers[helper].variant("hash")
        assert plain is not None
        assert cold.helpers[helper].base.max_ns >= plain.max_ns


def test_optional_classes_default_to_the_class_they_refine() -> None:
    t = table()  # neither alu_mov_reg nor jmp_loop_back
    assert t.insns["alu_mov_reg"] == t.insns["alu_mov"]
    assert t.insns["jmp_loop_back"] == t.insns["jmp_cond_taken"]
    t = table(HEAD + INSNS + "alu_mov_reg = { min_ns = 0.1, max_ns = 0.2 }\n" + HELPERS)
    assert t.insn_ns(one(bc.mov64(1, 2)), None) == (0.1, 0.2)  # r1 = r2
    assert t.insn_ns(one(bc.mov64(1, imm=2)), None) == (1.0, 2.0)  # r1 = 2: alu_mov
    assert t.insn_ns(one(bc.alu32(0xB0, 1, 2)), None) == (1.0, 2.0)  # w1 = w2: alu_mov


def test_user_and_legacy_probe_reads_cost_what_the_kernel_variant_does() -> None:
    t = table()
    kernel = t.helper_ns(HELPER_NAMES.index("probe_read_kernel"), None, (8, 16))
    for name in ("probe_read", "probe_read_user"):
        assert t.helper_ns(HELPER_NAMES.index(name), None, (8, 16)) == kernel
    assert not t.missing()
    t.helper_ns(HELPER_NAMES.index("probe_read_user_str"), None, None)  # no _str entry
    assert "probe_read_user_str" in t.missing()


@pytest.mark.parametrize("text, message", [
    (HEAD + INSNS.replace("alu_mul", "alu_mull"), "insn.alu_mull': unknown key"),
    (HEAD + INSNS.replace("alu_mul = { min_ns = 1.0, max_ns = 2.0 }\n", ""), "insn.alu_mul"),
    (HEAD + INSNS.replace("max_ns = 2.0 }", "max_ns = 0.5 }", 1), "below min_ns"),
    (HEAD + INSNS + "[helper.map_lokup_elem]\nmin_ns = 1.0\nmax_ns = 2.0\n", "did you mean"),
    (HEAD.replace('cpu = "test"\n', "") + INSNS, "provenance.cpu"),
    ("format = [", "not valid TOML"),
])
def test_errors_name_file_and_key(text: str, message: str) -> None:
    with pytest.raises(BpfLintError) as err:
        table(text)
    assert message in str(err.value) and str(err.value).startswith("t.toml")


def test_error_carries_line_number() -> None:
    text = HEAD + INSNS.replace("alu_neg = { min_ns = 1.0", "alu_neg = { min_ns = -1.0")
    with pytest.raises(BpfLintError) as err:
        table(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("alu_neg"))
    assert f"t.toml:{line}:" in str(err.value)


def test_shipped_table_loads_with_provenance(tmp_path: Path) -> None:
    t = load_cost_table(None)
    assert t.provenance.kernel and t.provenance.cpu and len(t.digest) == 64
    assert len(t.helpers) >= 30
    with pytest.raises(BpfLintError, match="cannot read"):
        load_cost_table(tmp_path / "none.toml")


def test_size_fit_bounds_every_point_and_never_drops_the_slope() -> None:
    from bpflint.kernel.calibrate.table import _fit

    rising = [(4, 10.0, 13.0), (64, 11.0, 14.0), (512, 19.0, 25.0)]
    flat = [(4, 10.0, 14.0), (64, 10.2, 13.5), (128, 9.9, 13.0)]  # noise, no slope
    for points in (rising, flat):
        base_lo, base_hi, per_lo, per_hi = _fit(points)
        assert per_hi > 0  # the size cap must cost more than the smallest size
        for size, lo, hi in points:
            assert base_lo + per_lo * size <= lo + 1e-9
            assert base_hi + per_hi * size >= hi - 1e-9


def test_size_fit_charges_a_first_unit_cost_once() -> None:
    from bpflint.kernel.calibrate.table import _fit

    # bpf_loop as calibrated on an Intel Xeon: the first iteration costs ~2 ns, later
    # ones ~1.1 ns each; the steep 1 -> 16 segment must not become the per-unit price
    loop = [(0, 0.75, 0.98), (1, 1.75, 2.27), (16, 25.25, 32.8), (64, 65.75, 85.5)]
    base_lo, base_hi, per_lo, per_hi = _fit(loop)
    assert per_hi == pytest.approx((85.5 - 32.8) / 48)
    for size, lo, hi in loop:
        assert base_lo + per_lo * size <= lo + 1e-9
        assert base_hi + per_hi * size >= hi - 1e-9
    assert base_hi + per_hi * 255 < 2.0 * 255  # the steepest segment's slope is ~2.03


def test_a_sign_extending_move_is_not_priced_as_a_register_move() -> None:
    # the same opcode (0xbf) for both: the price cache must tell them apart
    t = table(HEAD + INSNS + "alu_mov_reg = { min_ns = 0.1, max_ns = 0.2 }\n" + HELPERS)
    assert t.insn_ns(one(bc.mov64(1, 2)), None) == (0.1, 0.2)
    assert t.insn_ns(one(bc.alu64(AluOp.MOV, 1, 2, off=8)), None) == (1.0, 2.0)
    assert t.insn_ns(one(bc.mov64(3, 4)), None) == (0.1, 0.2)


# ------------------------------------------------ the shipped table, parsed at build

def _shipped_copy(tmp_path: Path) -> tuple[Path, str, str]:
    import hashlib

    from bpflint.cost import table_file

    text = Path(table_file._SHIPPED).read_text(encoding="utf-8")
    copy = tmp_path / "costs.toml"
    copy.write_text(text, encoding="utf-8")
    return copy, text, hashlib.sha256(text.encode()).hexdigest()


def test_the_ready_table_is_the_parsed_one(tmp_path: Path) -> None:
    from bpflint.cost import table_ready
    from bpflint.cost.table_file import toml_document

    copy, text, sha256 = _shipped_copy(tmp_path)
    assert table_ready.load(str(copy), sha256) is None  # none written yet
    doc = toml_document(text, "costs.toml")
    assert table_ready.write(str(copy), str(tmp_path), sha256, doc)
    ready = table_ready.load(str(copy), sha256)
    assert ready == doc and ready is not doc
    # the checks run on it as on a fresh parse: the same table, digest included
    from_ready = parse_cost_table(text, "costs.toml", ready, sha256)
    assert from_ready == parse_cost_table(text, "costs.toml")
    assert from_ready.digest == sha256


def test_a_ready_table_of_other_text_or_damaged_is_ignored(tmp_path: Path) -> None:
    from bpflint.cost import table_ready
    from bpflint.cost.table_file import toml_document

    copy, text, sha256 = _shipped_copy(tmp_path)
    table_ready.write(str(copy), str(tmp_path), sha256, toml_document(text, "costs.toml"))
    assert table_ready.load(str(copy), "0" * 64) is None  # the table was edited since
    ready = Path(table_ready.ready_path(str(copy)))
    ready.write_bytes(ready.read_bytes()[:100])
    assert table_ready.load(str(copy), sha256) is None
    ready.write_bytes(b"\x00not marshal")
    assert table_ready.load(str(copy), sha256) is None
    # marshal cannot hold a TOML date: no ready form, the text is parsed instead
    import datetime
    assert not table_ready.write(str(copy), str(tmp_path / "x"), sha256,
                                 {"date": datetime.date(2025, 1, 1)})


def test_the_shipped_table_loads_the_same_with_and_without_its_ready_form(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bpflint.cost import table_file, table_ready

    copy, text, sha256 = _shipped_copy(tmp_path)
    monkeypatch.setattr(table_file, "_SHIPPED", str(copy))
    parsed = load_cost_table(None)
    table_ready.write(str(copy), str(tmp_path), sha256,
                      table_file.toml_document(text, "costs.toml"))
    loads: list[object] = []
    real_load = table_ready.load
    monkeypatch.setattr(table_ready, "load",
                        lambda *args: loads.append(real_load(*args)) or loads[-1])
    assert load_cost_table(None) == parsed
    assert loads and loads[0] is not None  # the ready form was used
    copy.write_text(text.replace("max_ns = 5000.0", "max_ns = 5001.0", 1), encoding="utf-8")
    edited = load_cost_table(None)  # its ready form no longer matches: parsed
    assert loads[-1] is None and edited != parsed
