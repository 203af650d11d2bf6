"""The HTML cost map: self-contained, and rendered by a real browser (headless
Chromium, Debian's `chromium` package, installed by .ci/run)."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from bpfc import PROGS, compile_bpf, needs_clang
from gate_helpers import config, program

from bpflint.budget.baseline import from_results
from bpflint.budget.gate import evaluate
from bpflint.cli import main
from bpflint.report import html
from bpflint.results import AnalysisReport, LineCost, LoopNote

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HELPER_SOURCE = PROGS / "ns" / "helper_branch.bpf.c"


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


needs_chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="headless Chromium is needed (Debian: apt-get install chromium chromium-driver)")


def dump_dom(page: Path, tmp_path: Path, fragment: str = "") -> str:
    """The DOM after the page's script ran, as headless Chromium serialises it."""
    chromium = find_chromium()
    assert chromium is not None
    argv = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}", "--dump-dom",
            page.resolve().as_uri() + fragment]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


class _Tags(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(document: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(document)
    return parser.tags


def line_of(needle: str, source: Path) -> int:
    return next(n for n, t in enumerate(source.read_text().splitlines(), 1) if needle in t)


@pytest.fixture(scope="module")
def examples_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "report.html"
    objects = sorted(str(p) for p in EXAMPLES.glob("*/*.bpf.o"))
    assert main(["analyze", "--no-cache", "--format", "html", "--output", str(out),
                 *objects]) == 0
    return out


def test_the_page_is_self_contained(examples_page: Path) -> None:
    page = examples_page.read_text()
    for tag, attrs in tags(page):
        # nothing is fetched: no external script, style sheet, image or frame
        assert tag not in ("link", "img", "iframe", "object", "embed"), tag
        assert not (tag == "script" and attrs.get("src")), attrs
    assert not re.search(r"url\(|@import|https?://", page)
    assert "default-src 'none'" in page


def test_every_program_has_its_source_and_paths(examples_page: Path) -> None:
    page = examples_page.read_text()
    names = re.findall(r'<section class="program" id="p\d+" data-program="([^"]+)"', page)
    assert names == ["stage_tcp", "stage_udp", "stage_icmp", "classify",
                     "handle_openat_enter", "handle_openat_exit", "handle_fsync",
                     "xdp_firewall"]
    # source read from disk: a comment line no BTF line info carries
    assert "Returns the IPv4 header, or NULL when the packet is not" in page
    # stage_udp's time path goes through its map update, marked T but not I
    udp = page.split('data-program="stage_udp"')[1].split("<section")[0]
    update = line_of("bpf_map_update_elem(&dns_buckets",
                     EXAMPLES / "tc-tailcall" / "classifier.bpf.c")
    row = re.search(rf'<tr id="p1-classifier_bpf_c-{update}" class="([^"]+)"', udp)
    assert row is not None and row.group(1).split() == ["l", "pn"]
    assert "ƒ bpf_map_update_elem" in udp
    # the bpf_loop in handle_openat_exit shows its bound and where it comes from
    assert "≤ 256 callback runs: bpf_loop: 1 to 256 callback runs" in page


def test_a_missing_source_shows_the_figures_with_btf_text(tmp_path: Path) -> None:
    hot = (LineCost("/nonexistent/gone.bpf.c", 12, 700, 900.0, "for (i = 0; i < n; i++)"),)
    result = program("gone", hot=hot, source_file="/nonexistent/gone.bpf.c")
    page = html.render_analysis(AnalysisReport((result,), ()))
    assert "source not found" in page and "for (i = 0; i &lt; n; i++)" in page
    assert '<tr id="p0-gone_bpf_c-12" class="l pi"' in page


def test_loops_and_check_verdicts(tmp_path: Path) -> None:
    hot = (LineCost("fw.bpf.c", 12, 700, 900.0, "for (i = 0; i < n; i++)"),)
    before = program("fw", hot=hot, insns_max=600, ns_max=400.0)
    after = program("fw", hot=hot, insns_max=700, ns_max=900.0)
    after = type(after)(**{**after.__dict__, "loops": (
        LoopNote("fw.bpf.c", 12, "loop", 63, "r6 += 1 over [0, 64]"),)})
    cfg = config(tmp_path, '[[budget]]\nprogram = "fw"\nmax_time = "800ns"\n'
                           '[regression]\nallowed = "5%"\n')
    report = evaluate(AnalysisReport((after,), ()), cfg, from_results((before,), "base"))
    page = html.render_check(report)
    assert '<p class="verdict fail">FAIL</p>' in page
    assert "BPF001" in page and "BPF002" in page
    assert "budget 800ns" in page and "baseline 400ns, +500ns" in page
    assert "≤ 63 back edges: r6 += 1 over [0, 64]" in page
    assert 'class="over"' in page  # the bar over its budget


@needs_chromium
def test_chromium_renders_the_examples_report(examples_page: Path, tmp_path: Path) -> None:
    dom = dump_dom(examples_page, tmp_path)
    assert 'id="js-error"' not in dom
    body = next(attrs for tag, attrs in tags(dom) if tag == "body")
    assert body.get("data-ready") == "8"  # the script ran to its end, over 8 programs
    assert body.get("class") == "by-ns"
    rows = [attrs for tag, attrs in tags(dom) if tag == "tr" and attrs.get("class")]
    marked_time = [r for r in rows if "pn" in (r.get("class") or "").split()]
    marked_insns = [r for r in rows if "pi" in (r.get("class") or "").split()]
    assert marked_time and marked_insns
    links = [attrs["href"] for tag, attrs in tags(dom) if tag == "a" and attrs.get("href")]
    assert "#p1" in links  # the summary lists each program
    # the switch: the address's #by=insns shades by instructions
    dom = dump_dom(examples_page, tmp_path, "#by=insns")
    body = next(attrs for tag, attrs in tags(dom) if tag == "body")
    assert body.get("class") == "by-insns" and 'id="js-error"' not in dom


@needs_chromium
def test_chromium_shows_a_script_error(examples_page: Path, tmp_path: Path) -> None:
    # the error marker the tests rely on does appear when the script fails
    broken = tmp_path / "broken.html"
    page = examples_page.read_text()
    broken.write_text(page.replace("</main><script>",
                                   "</main><script>setTimeout(function () { "
                                   "undefinedFunction(); }, 0);", 1))
    dom = dump_dom(broken, tmp_path)
    assert 'id="js-error"' in dom and "undefinedFunction" in dom


@needs_chromium
def test_chromium_shows_a_blocked_fetch(examples_page: Path, tmp_path: Path) -> None:
    # anything the page would fetch is refused by its policy, and shown
    fetching = tmp_path / "fetching.html"
    page = examples_page.read_text()
    fetching.write_text(page.replace("<main>", '<main><img src="http://192.0.2.1/x.png">', 1))
    dom = dump_dom(fetching, tmp_path)
    assert 'id="js-error"' in dom and "blocked: http://192.0.2.1/x.png" in dom


@needs_clang
@needs_chromium
def test_chromium_marks_the_helper_on_the_time_path(tmp_path: Path) -> None:
    obj = compile_bpf(HELPER_SOURCE)
    out = tmp_path / "explain.html"
    assert main(["explain", str(obj), "--format", "html", "--output", str(out)]) == 0
    dom = dump_dom(out, tmp_path)
    assert 'id="js-error"' not in dom
    helper = line_of("bpf_map_update_elem(&seen", HELPER_SOURCE)
    row = next(attrs for tag, attrs in tags(dom)
               if tag == "tr" and (attrs.get("id") or "").endswith(f"-{helper}"))
    assert (row.get("class") or "").split() == ["l", "pn"]


def test_check_writes_the_page_beside_its_other_formats(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    project = tmp_path / "tc"
    shutil.copytree(EXAMPLES / "tc-tailcall", project)
    budget = project / "bpfbudget.toml"
    # the stages' time budget, whatever the example sets it to, far below their worst case
    text, found = re.subn(r'(program = "stage_\*"\nmax_insns = \d+\nmax_time = )"[^"]*"',
                          r'\1"200ns"', budget.read_text())
    assert found == 1
    budget.write_text(text)
    out = tmp_path / "check.html"
    code = main(["check", "--no-cache", "--config", str(budget), "--format", "text",
                 "--format", "html", "--output", str(out)])
    assert code == 1
    assert "FAIL" in capsys.readouterr().out
    page = out.read_text()
    assert page.count('<p class="verdict fail">FAIL</p>') == 3
    assert "exceeds the budget of 200ns" in page
    update = line_of("bpf_map_update_elem(&dns_buckets", project / "classifier.bpf.c")
    # the finding links to the line that drives the time
    assert re.search(rf'href="#p\d-classifier_bpf_c-{update}">BPF001', page)


def test_check_against_a_base_run_shows_line_by_line_deltas(tmp_path: Path) -> None:
    # the same lines moved down by one (an edit above them), one dearer, one gone
    was = (LineCost("fw.bpf.c", 10, 5, 200.0, "bpf_map_update_elem(&m, &k, &v, 0);"),
           LineCost("fw.bpf.c", 11, 3, 1.0, "x += 1;"),
           LineCost("fw.bpf.c", 12, 3, 50.0, "bpf_ktime_get_ns();"))
    now = (LineCost("fw.bpf.c", 11, 5, 260.0, "bpf_map_update_elem(&m, &k, &v, 0);"),
           LineCost("fw.bpf.c", 12, 3, 1.0, "x += 1;"),
           LineCost("fw.bpf.c", 13, 4, 2.0, "y += 2;"))
    before = dataclasses.replace(program("fw", hot=was, ns_max=251.0), worst_path_ns=was)
    after = dataclasses.replace(program("fw", hot=now, ns_max=263.0), worst_path_ns=now)
    cfg = config(tmp_path, '[[budget]]\nprogram = "fw"\nmax_time = "1us"\n')
    report = evaluate(AnalysisReport((after,), ()), cfg, from_results((before,), "git ref X"))
    report = dataclasses.replace(report, base_results=(before,))
    page = html.render_check(report)

    def delta(line: int) -> str:
        row = page.split(f'id="p0-fw_bpf_c-{line}"')[1].split("</tr>")[0]
        found = re.search(r'<td class="d">([^<]*)</td>', row)
        assert found is not None
        return found.group(1)

    assert delta(11) == "+60.0ns"
    assert delta(12) == ""
    assert delta(13) == "new"
    assert "no longer on the worst path by time (at the base): fw.bpf.c:12 " \
           "bpf_ktime_get_ns(); (50.0ns)" in page
    # against a baseline file (totals only) the page says why there are no line deltas
    plain = html.render_check(dataclasses.replace(report, base_results=()))
    assert "line-by-line deltas need --base REF" in plain and 'class="d"' not in plain


def test_the_witness_marks_its_lines_and_the_worst_path_lines_it_missed() -> None:
    hot = (LineCost("fw.bpf.c", 10, 4, 5.0, "if (x)"),
           LineCost("fw.bpf.c", 11, 6, 7.0, "y = 1;"))
    result = program("fw", hot=hot)
    view = html.WitnessView(0.5, 5, 10, "the worst path is infeasible",
                            {("fw.bpf.c", 10): 4, ("fw.bpf.c", 12): 1}, "z3")
    page = html.render_analysis(AnalysisReport((result,), ()),
                                witnesses={(result.object, result.section, "fw"): view})
    assert 'data-reached="0.5000"' in page and "reached <b>0.500</b>" in page
    assert "the worst path is infeasible" in page
    rows = {attrs["id"]: (attrs.get("class") or "").split() for tag, attrs in tags(page)
            if tag == "tr" and attrs.get("id")}
    assert rows["p0-fw_bpf_c-10"] == ["l", "pi", "pw"]  # as often as the worst path
    assert "miss" in rows["p0-fw_bpf_c-11"]  # on the worst path, never run
    assert rows["p0-fw_bpf_c-12"] == ["l", "pw"]  # only the witness runs it
    # without witnesses the page has no W column
    plain = html.render_analysis(AnalysisReport((result,), ()))
    assert 'class="mark pw"' not in plain and 'class="witness' not in plain
    assert all("pw" not in (attrs.get("class") or "").split()
               for tag, attrs in tags(plain) if tag == "tr")


@needs_clang
@needs_chromium
def test_chromium_shows_the_witness_path_next_to_the_worst_path(tmp_path: Path) -> None:
    pytest.importorskip("z3")
    obj = compile_bpf(PROGS / "calls.bpf.c")
    classifier = EXAMPLES / "tc-tailcall" / "classifier.bpf.o"
    out = tmp_path / "witness.html"
    assert main(["analyze", "--no-cache", "--witness", "--witness-seconds", "5",
                 "--format", "html", "--output", str(out), str(classifier), str(obj)]) == 0
    dom = dump_dom(out, tmp_path)
    assert 'id="js-error"' not in dom
    sections = dom.split('<section class="program"')[1:]
    by_name = {re.search(r'data-program="([^"]+)"', s).group(1): s  # type: ignore[union-attr]
               for s in sections}
    for name, section in by_name.items():
        found = re.search(r'<p class="witness" data-reached="([0-9.]+)"', section)
        assert found is not None, name
        rows = [(attrs.get("class") or "").split() for tag, attrs in tags(section)
                if tag == "tr" and attrs.get("id")]
        worst = [r for r in rows if "pi" in r]
        assert worst, name
        if float(found.group(1)) == 1.0:
            # a witness that reaches max runs every line of the worst path
            assert all("pw" in r for r in worst), name
        else:
            # it runs fewer instructions than max: on some worst-path line, fewer
            # than the worst path does there
            assert any("miss" in r for r in worst), name
    assert float(re.search(  # type: ignore[union-attr]
        r'data-reached="([0-9.]+)"', by_name["classify"]).group(1)) == 1.0
    assert float(re.search(  # type: ignore[union-attr]
        r'data-reached="([0-9.]+)"', by_name["calls_chain"]).group(1)) < 1.0
