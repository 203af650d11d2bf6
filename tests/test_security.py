"""bpflint runs on pull requests from strangers: what it must never do.

- analyze/check/baseline only parse objects: no bpf() call, no ctypes at all;
- clang runs from an argv list: file names are never shell text;
- SARIF and annotation paths stay inside the workspace;
- only documented environment variables are read (docs/security.md).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bpfc import PROGS, compile_bpf, find_clang, needs_clang

from bpflint.budget.config import load_config
from bpflint.budget.gate import evaluate
from bpflint.cli import main
from bpflint.kernel import syscall
from bpflint.report import github, sarif
from bpflint.results import AnalysisReport, LineCost, ObjectError, ProgramResult, SourceLoc

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "bpflint"
SECURITY_DOC = ROOT / "docs" / "security.md"

MINIMAL_PROG = """\
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int pass(struct xdp_md *ctx)
{
\treturn XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
"""


# ---------------------------------------------------------------- (a) no bpf()

class _Watch:
    """Records ctypes and process-launch audit events while active.

    sys.addaudithook cannot be undone, so one hook is installed for the session and
    only records between start() and stop().
    """

    def __init__(self) -> None:
        self.active = False
        self.events: list[tuple[str, tuple[Any, ...]]] = []
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if self.active and (event.startswith("ctypes.") or event in (
                "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn")):
            self.events.append((event, args))

    def start(self) -> None:
        self.events = []
        self.active = True

    def stop(self) -> list[tuple[str, tuple[Any, ...]]]:
        self.active = False
        return self.events


@pytest.fixture(scope="session")
def _session_watch() -> _Watch:
    return _Watch()


@pytest.fixture
def watch(_session_watch: _Watch, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Watch]:
    def refuse(*_args: Any) -> int:
        raise AssertionError("bpf() called during static analysis")

    # also in forked analysis workers, which inherit the patched module
    monkeypatch.setattr(syscall, "_sys_bpf", refuse)
    yield _session_watch
    _session_watch.active = False


@pytest.fixture
def project(tmp_path: Path) -> Path:
    if find_clang() is None:
        pytest.skip("clang is needed")
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "build").mkdir()
    (root / "src" / "prog.bpf.c").write_text(MINIMAL_PROG)
    for name in ("csum_loop", "tail_calls", "bpf_loop"):
        shutil.copy(compile_bpf(PROGS / f"{name}.bpf.c"), root / "build" / f"{name}.bpf.o")
    (root / "bpfbudget.toml").write_text(
        '[analyze]\nobjects = ["build/*.o"]\nsources = ["src/*.bpf.c"]\n\n'
        '[[budget]]\nmax_insns = 100000\n')
    return root


@needs_clang
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_analyze_and_check_never_reach_the_kernel(project: Path, watch: _Watch, jobs: str,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(project)
    cache = ["--cache-dir", str(project.parent / "cache")]
    watch.start()
    codes = [main(["analyze", "-j", jobs, "--no-cache", "build"]),
             main(["check", "-j", jobs, *cache]),
             main(["check", "-j", jobs, *cache]),  # from the cache
             main(["baseline", "-j", jobs, *cache, "--output", "base.json"])]
    events = watch.stop()
    out, err = capsys.readouterr()
    assert codes == [0, 0, 0, 0], err
    assert "bpf() called" not in out + err
    assert not [e for e, _ in events if e.startswith("ctypes.")]
    # the programs started: the compiler (probed, then compiling the source) and git
    # (asked for the work tree that report paths are relative to)
    launched = [Path(str(args[0])).name for event, args in events if event == "subprocess.Popen"]
    assert any(name.startswith("clang") for name in launched), launched
    assert all(name.startswith("clang") or name == "git" for name in launched), launched


@needs_clang
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_no_bpf_syscall_under_strace(project: Path, tmp_path: Path) -> None:
    """The same from outside the interpreter: not one bpf(2) call in any process."""
    log = tmp_path / "strace.log"
    done = subprocess.run(["strace", "-f", "-qq", "-e", "trace=bpf", "-o", str(log),
                           sys.executable, "-m", "bpflint", "check", "-j", "2", "--no-cache"],
                          cwd=project, capture_output=True, text=True, timeout=300)
    if done.returncode != 0 and "ptrace" in done.stderr:
        pytest.skip(f"strace cannot trace here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bpf(" not in log.read_text()


# ---------------------------------------------------------------- (b) clang argv

HOSTILE_NAMES = ["a;touch pwned.bpf.c", "with space.bpf.c", "$(touch pwned2).bpf.c",
                 "`touch pwned3`.bpf.c", "quote'\"x.bpf.c"]


@needs_clang
def test_hostile_source_names_compile_as_plain_files(project: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    for name in HOSTILE_NAMES:
        (project / "src" / name).write_text(MINIMAL_PROG)
    monkeypatch.chdir(project)
    code = main(["check", "--no-cache", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    objects = {Path(p["object"]).name for p in json.loads(out)["programs"]}
    assert {name.removesuffix(".c") + ".o" for name in HOSTILE_NAMES} <= objects
    assert not list(project.parent.rglob("pwned*")), "a file name ran as a command"


@needs_clang
def test_source_named_like_an_option_is_a_file(project: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    (project / "src" / "-o.bpf.c").write_text("this is not C\n")
    monkeypatch.chdir(project / "src")
    code = main(["check", "--no-cache", "--config", "../bpfbudget.toml", "--", "-o.bpf.c"])
    out, err = capsys.readouterr()
    assert code == 2
    [line] = [ln for ln in err.splitlines() if ln.startswith("bpflint: error:")]
    assert "-o.bpf.c: clang failed:" in line and "Traceback" not in err
    assert not list(project.parent.rglob("pwned*"))


# ---------------------------------------------------------------- (c) report paths

def _report_with_sources(workspace: Path, object_path: str, *files: str) -> AnalysisReport:
    lines = tuple(LineCost(f, 3, 100 - i, 10.0) for i, f in enumerate(files))
    result = ProgramResult(object_path, "xdp", "prog\n::error::injected", "xdp", 5, True, 1,
                           100, 1.0, 10.0, SourceLoc(files[0], 1), lines, lines)
    return AnalysisReport((result,), (ObjectError("/etc/hostname", "broken\n::error::x"),))


def _gate(workspace: Path, report: AnalysisReport) -> Any:
    config_path = workspace / "bpfbudget.toml"
    config_path.write_text("[[budget]]\nmax_insns = 1\n")
    return evaluate(report, load_config(config_path), None)


def _assert_inside(workspace: Path, relative: str) -> None:
    assert relative and not Path(relative).is_absolute(), relative
    assert ".." not in Path(relative).parts, relative
    assert (workspace / relative).resolve().is_relative_to(workspace.resolve()), relative


@pytest.mark.parametrize("source", ["../../etc/passwd", "/etc/passwd", "link/passwd",
                                    "../outside.bpf.c", "src/../../outside.bpf.c"])
@pytest.mark.parametrize("object_where", ["inside", "outside"])
def test_report_paths_cannot_leave_the_workspace(tmp_path: Path, source: str,
                                                 object_where: str) -> None:
    workspace = tmp_path / "ws"
    (workspace / "build").mkdir(parents=True)
    (workspace / "src").mkdir()
    (tmp_path / "outside.bpf.c").write_text("int x;\n")
    (workspace / "link").symlink_to("/etc")  # a link in the checkout pointing out of it
    obj = workspace / "build" / "prog.bpf.o" if object_where == "inside" \
        else tmp_path / "prog.bpf.o"
    obj.write_bytes(b"")
    gate = _gate(workspace, _report_with_sources(workspace, str(obj), source))

    document = json.loads(sarif.render(gate, workspace))
    uris = [loc["physicalLocation"]["artifactLocation"]["uri"]
            for result in document["runs"][0]["results"] for loc in result["locations"]]
    assert uris
    for uri in uris:
        _assert_inside(workspace, uri)
        assert "passwd" not in uri and "outside" not in uri

    annotations = github.render(gate, workspace).splitlines()
    assert annotations and all(line.startswith("::") for line in annotations)
    files = [m.group(1) for line in annotations if (m := re.search(r"file=([^,:]*)", line))]
    assert files
    for file in files:
        _assert_inside(workspace, file)
        assert "passwd" not in file and "outside" not in file
    # names from the object cannot start a workflow command of their own
    assert not any(line.startswith("::error::injected") or line.startswith("::error::x")
                   for line in annotations)


def test_sources_inside_the_workspace_keep_their_line(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "src").mkdir(parents=True)
    (workspace / "src" / "odd #name%.bpf.c").write_text("int x;\n")
    obj = workspace / "prog.bpf.o"
    obj.write_bytes(b"")
    gate = _gate(workspace, _report_with_sources(workspace, str(obj),
                                                 str(workspace / "src" / "odd #name%.bpf.c")))
    document = json.loads(sarif.render(gate, workspace))
    location = document["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    # a URI reference: '#' and '%' escaped, so no part of the name reads as a fragment
    assert location["artifactLocation"]["uri"] == "src/odd%20%23name%25.bpf.c"
    assert location["region"] == {"startLine": 3}


# ---------------------------------------------------------------- (d) environment

_ENV_READS = [
    re.compile(r"""\benviron\.get\(\s*["']([A-Z0-9_]+)["']"""),
    re.compile(r"""\benviron\[\s*["']([A-Z0-9_]+)["']\s*\]"""),
    re.compile(r"""\bgetenv\(\s*["']([A-Z0-9_]+)["']"""),
    # the Action's inputs: env_input(environ, "NAME") reads BPFLINT_NAME
    re.compile(r"""\benv_input\(\s*environ,\s*["']([A-Z0-9_]+)["']"""),
]
# os.environ handed whole to a function that reads named variables from it (its
# .get("NAME") calls are matched above); a module that does this is listed here
_ENV_PASSED = re.compile(r"\bos\.environ\s*[,)]")
_ENV_PASSING_MODULES = {"commands/check.py", "commands/analyze.py", "action/__main__.py"}


def _documented_variables() -> set[str]:
    text = SECURITY_DOC.read_text()
    section = text.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\|\s*`([A-Z0-9_]+)`\s*\|", section, flags=re.MULTILINE))


def test_only_documented_environment_variables_are_read() -> None:
    documented = _documented_variables()
    assert {"CLANG", "NO_COLOR", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_WORKSPACE",
            "XDG_CACHE_HOME"} <= documented
    read: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        text = path.read_text()
        for pattern in _ENV_READS:
            for match in pattern.finditer(text):
                name = match.group(1)
                if pattern.pattern.startswith(r"\benv_input"):
                    name = f"BPFLINT_{name}"
                read.setdefault(name, set()).add(module)
        if _ENV_PASSED.search(text):
            assert module in _ENV_PASSING_MODULES, f"{module} passes os.environ on"
        # every other mention of the environment must be one of the forms above; the
        # Action's steps thread one `environ` mapping through their functions, and
        # their reads of it are still the forms matched above
        if module.startswith("action/"):
            continue
        mentions = len(re.findall(r"\b(?:environ|getenv)\b", text))
        recognised = sum(len(p.findall(text)) for p in _ENV_READS) + \
            len(_ENV_PASSED.findall(text)) + \
            len(re.findall(r"\benviron: Mapping\[str, str\]", text)) + \
            len(re.findall(r"""\benviron\.get\(f["']BPFLINT_\{name\}["']""", text))
        assert mentions == recognised, f"{module}: environment read in an unrecognised way"
    assert read, "the scan found no environment reads at all"
    undocumented = {name: sorted(modules) for name, modules in read.items()
                    if name not in documented}
    assert not undocumented, f"read but not in docs/security.md: {undocumented}"
