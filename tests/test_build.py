"""The compile step: clang into a content-addressed cache, errors as BpfLintError."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from bpfc import find_clang

from bpflint.build import BuildSettings
from bpflint.build.compile import _parse_depfile, compile_sources
from bpflint.errors import BpfLintError

CLANG = find_clang()
needs_clang = pytest.mark.skipif(CLANG is None, reason="no clang on this machine")

EM_BPF = 247

SOURCE = """\
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "limits.h"

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int prog(struct xdp_md *ctx)
{
	return ctx->data_end - ctx->data > LIMIT ? XDP_DROP : XDP_PASS;
}
"""


@pytest.fixture
def logging_clang(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$CLANG: a wrapper that appends each invocation's arguments to a log."""
    assert CLANG is not None
    log = tmp_path / "clang.log"
    wrapper = tmp_path / "bin" / "clang-wrapper"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {shlex.quote(str(log))}\n'
        f'exec {shlex.quote(CLANG)} "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("CLANG", str(wrapper))
    return log


def _project(root: Path, limit: int = 100) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "limits.h").write_text(f"#define LIMIT {limit}\n")
    source = root / "prog.bpf.c"
    source.write_text(SOURCE)
    return source


def _invocations(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def _is_bpf_elf(path: Path) -> bool:
    head = path.read_bytes()[:20]
    return head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == EM_BPF


@needs_clang
def test_second_run_reuses_the_cache_without_running_clang(
    tmp_path: Path, logging_clang: Path
) -> None:
    source = _project(tmp_path / "src")
    cache = tmp_path / "cache"
    [first] = compile_sources([source], BuildSettings(), cache, jobs=2)
    assert first.name == "prog.bpf.o"  # the stem survives: baselines key on it
    assert _is_bpf_elf(first)
    compiles = [line for line in _invocations(logging_clang) if " -c " in f" {line} "]
    assert len(compiles) == 1

    logging_clang.unlink()
    [second] = compile_sources([source], BuildSettings(), cache, jobs=2)
    assert second == first
    assert _invocations(logging_clang) == []  # not even `clang --version`


@needs_clang
def test_header_flag_and_source_changes_recompile(tmp_path: Path, logging_clang: Path) -> None:
    source = _project(tmp_path / "src")
    cache = tmp_path / "cache"
    [base] = compile_sources([source], BuildSettings(), cache, jobs=1)

    (tmp_path / "src" / "limits.h").write_text("#define LIMIT 200\n")
    [after_header] = compile_sources([source], BuildSettings(), cache, jobs=1)
    assert after_header != base

    logging_clang.unlink()
    [with_define] = compile_sources(
        [source], BuildSettings(defines=("EXTRA=1",)), cache, jobs=1
    )
    assert with_define not in (base, after_header)
    assert any("-DEXTRA=1" in line for line in _invocations(logging_clang))

    source.write_text(SOURCE + "/* touched */\n")
    [after_source] = compile_sources([source], BuildSettings(), cache, jobs=1)
    assert after_source not in (base, after_header, with_define)

    # Going back to an earlier state is a hit again: the key is content, not time.
    (tmp_path / "src" / "limits.h").write_text("#define LIMIT 100\n")
    source.write_text(SOURCE)
    logging_clang.unlink()
    assert compile_sources([source], BuildSettings(), cache, jobs=1) == [base]
    assert _invocations(logging_clang) == []


@needs_clang
def test_many_sources_compile_in_parallel_in_order(tmp_path: Path, logging_clang: Path) -> None:
    sources = []
    for index in range(4):
        source = _project(tmp_path / f"p{index}", limit=index)
        sources.append(source.rename(source.with_name(f"p{index}.bpf.c")))
    objects = compile_sources(sources, BuildSettings(), tmp_path / "cache", jobs=2)
    assert [o.name for o in objects] == [f"p{i}.bpf.o" for i in range(4)]
    assert len(set(objects)) == 4 and all(_is_bpf_elf(o) for o in objects)


@needs_clang
def test_concurrent_runs_share_one_cache(tmp_path: Path, logging_clang: Path) -> None:
    source = _project(tmp_path / "src")
    cache = tmp_path / "cache"
    results: list[list[Path]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(compile_sources([source], BuildSettings(), cache, jobs=1))
        except BaseException as exc:  # noqa: BLE001 - re-raised through the assert
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({tuple(r) for r in results}) == 1
    assert _is_bpf_elf(results[0][0])
    assert not any((cache / "tmp").iterdir())  # no temporary files left behind


@needs_clang
def test_deleted_cache_is_rebuilt(tmp_path: Path, logging_clang: Path) -> None:
    import shutil

    source = _project(tmp_path / "src")
    cache = tmp_path / "cache"
    [first] = compile_sources([source], BuildSettings(), cache, jobs=1)
    shutil.rmtree(cache)
    [again] = compile_sources([source], BuildSettings(), cache, jobs=1)
    assert again == first and _is_bpf_elf(again)


@needs_clang
def test_compile_error_carries_the_compilers_message(tmp_path: Path, logging_clang: Path) -> None:
    source = _project(tmp_path / "src")
    source.write_text(SOURCE.replace("ctx->data_end", "ctx->no_such_field"))
    with pytest.raises(BpfLintError) as caught:
        compile_sources([source], BuildSettings(), tmp_path / "cache", jobs=1)
    message = str(caught.value)
    assert str(source) in message
    assert "no member named 'no_such_field'" in message
    assert "\n" not in message


def test_missing_configured_clang_is_an_error(tmp_path: Path) -> None:
    source = _project(tmp_path / "src")
    settings = BuildSettings(clang=str(tmp_path / "no-such-clang"))
    with pytest.raises(BpfLintError, match="no-such-clang' not found"):
        compile_sources([source], settings, tmp_path / "cache", jobs=1)


def test_no_clang_on_path_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _project(tmp_path / "src")
    monkeypatch.delenv("CLANG", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(BpfLintError, match="clang not found on PATH"):
        compile_sources([source], BuildSettings(), tmp_path / "cache", jobs=1)


def test_missing_source_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BpfLintError, match="no such source file"):
        compile_sources([tmp_path / "gone.bpf.c"], BuildSettings(), tmp_path / "cache", jobs=1)


def test_depfile_with_continuations_and_escaped_spaces(tmp_path: Path) -> None:
    text = f"x.o: {tmp_path}/a.c \\\n  {tmp_path}/my\\ dir/b.h \\\n  {tmp_path}/c$$.h\n"
    assert _parse_depfile(text) == sorted(
        [f"{tmp_path}/a.c", f"{tmp_path}/my dir/b.h", f"{tmp_path}/c$.h"]
    )


CLI_CONFIG = """\
[analyze]
sources = ["*.bpf.c"]

[[budget]]
max_insns = 100000
"""


def _bpflint(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bpflint", *args], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=120,
    )


@needs_clang
def test_check_compiles_the_configured_sources(tmp_path: Path) -> None:
    _project(tmp_path / "proj")
    (tmp_path / "proj" / "bpfbudget.toml").write_text(CLI_CONFIG)
    env = {**os.environ, "CLANG": str(CLANG), "NO_COLOR": "1"}
    ok = _bpflint(["check"], tmp_path / "proj", env)
    assert ok.returncode == 0, ok.stderr + ok.stdout
    assert "prog.bpf.o" in ok.stdout
    assert list((tmp_path / "proj" / ".bpflint-cache").rglob("prog.bpf.o"))


@needs_clang
def test_check_exits_2_with_clangs_message_on_a_compile_error(tmp_path: Path) -> None:
    source = _project(tmp_path / "proj")
    (tmp_path / "proj" / "bpfbudget.toml").write_text(CLI_CONFIG)
    source.write_text(SOURCE.replace("XDP_PASS;", "XDP_PASS"))
    env = {**os.environ, "CLANG": str(CLANG), "NO_COLOR": "1"}
    broken = _bpflint(["check"], tmp_path / "proj", env)
    assert broken.returncode == 2
    [line] = broken.stderr.splitlines()
    assert line.startswith("bpflint: error: ") and "prog.bpf.c" in line
    assert "error: expected ';'" in line


def test_check_exits_2_when_clang_is_missing(tmp_path: Path) -> None:
    _project(tmp_path / "proj")
    (tmp_path / "proj" / "bpfbudget.toml").write_text(CLI_CONFIG)
    env = {**os.environ, "CLANG": str(tmp_path / "no-such-clang")}
    missing = _bpflint(["check"], tmp_path / "proj", env)
    assert missing.returncode == 2
    assert "no-such-clang' not found" in missing.stderr
    assert "Traceback" not in missing.stderr
