"""Compile BPF C sources with clang into a content-addressed cache.

Cache layout under ``cache_dir`` (safe to delete at any time, safe to share between
concurrent runs: every file is written to a temporary name and renamed into place):

    clang/<id>.json       one probe per clang binary: version line, host include dirs
    deps/<k1>.json        the headers the last compile of a source read (clang -MD)
    obj/<k2>/<stem>.o     the object

The key has two levels, like ccache's direct mode. ``k1`` hashes what is known before
compiling: the clang version, the argument list, the source's path and bytes. The deps
manifest stored under ``k1`` names the headers that source included; ``k2`` adds their
contents. A cache hit therefore reads files and never runs clang.

The object keeps the source's stem (``fw.bpf.c`` -> ``fw.bpf.o``) because results are
identified by the object's basename: a compiled source and the same object built by a
Makefile must compare against the same baseline entries.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bpflint.build.settings import BuildSettings, is_bpf_source
from bpflint.errors import BpfLintError

__all__ = ["BuildSettings", "compile_sources", "ignore_in_git", "is_bpf_source"]

# Base flags every BPF object needs: BTF and line info (-g) are what map costs back to
# source lines; -O2 is what every loader expects (-O0 output rarely verifies).
BASE_FLAGS = ("-target", "bpf", "-O2", "-g")

COMPILE_TIMEOUT_S = 300.0
PROBE_TIMEOUT_S = 60.0
MAX_ERROR_LINES = 3

# bpf_tracing.h picks the pt_regs layout from __TARGET_ARCH_<arch>; the names are
# libbpf's, keyed by the host's machine name.
_TARGET_ARCH = {
    "x86_64": "x86",
    "amd64": "x86",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "ppc64le": "powerpc",
    "s390x": "s390",
    "riscv64": "riscv",
    "loongarch64": "loongarch",
}

_VERSIONED_CLANG = re.compile(r"clang-(\d+)")


@dataclass(frozen=True)
class _Clang:
    """A clang binary and what a compile needs to know of it."""

    path: str
    version: str  # first line of `clang --version`
    system_includes: tuple[str, ...]


def compile_sources(
    sources: list[Path], settings: BuildSettings, cache_dir: Path, jobs: int
) -> list[Path]:
    """Compile each source (or reuse its cached object); objects in the sources' order."""
    if not sources:
        return []
    for source in sources:
        if not source.is_file():
            raise BpfLintError(f"{source}: no such source file")
    ignore_in_git(cache_dir)
    clang = _probe(_resolve_clang(settings.clang), cache_dir)
    args = _compile_args(clang, settings)
    # imported here: the thread pool (and the logging it pulls in) is start-up time
    # every `bpflint analyze` would otherwise pay
    from concurrent.futures import ThreadPoolExecutor

    unique = list(dict.fromkeys(source.resolve() for source in sources))
    workers = max(1, min(jobs if jobs > 0 else (os.cpu_count() or 1), len(unique)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {src: pool.submit(_compile_one, clang, args, src, cache_dir) for src in unique}
        # Wait for every compile before raising, so no worker outlives the call, and
        # report the first failing source in the order the user gave them.
        outcomes = {src: future.exception() or future.result() for src, future in futures.items()}
    for outcome in outcomes.values():
        if isinstance(outcome, BaseException):
            raise outcome
    return [outcomes[source.resolve()] for source in sources]  # type: ignore[misc]


def ignore_in_git(directory: Path) -> None:
    """Put a ``.gitignore`` holding ``*`` in the cache directory, as pytest does for
    .pytest_cache: .bpflint-cache/ lives in the user's repository and must never show
    up as untracked files. Best effort: a read-only file system only costs that."""
    marker = directory / ".gitignore"
    if marker.exists():
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".gitignore.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("# created by bpflint: this directory is a cache\n*\n")
        os.replace(tmp, marker)
    except OSError:
        pass


def _resolve_clang(configured: str | None) -> str:
    wanted = configured or os.environ.get("CLANG")
    if wanted:
        found = shutil.which(wanted)
        if found is None:
            raise BpfLintError(
                f"clang '{wanted}' not found (set [build] clang in bpfbudget.toml or $CLANG)"
            )
        return found
    newest = _newest_versioned_clang()
    found = newest or shutil.which("clang")
    if found is None:
        raise BpfLintError(
            "clang not found on PATH: install clang, or set [build] clang in "
            "bpfbudget.toml or $CLANG, or point [analyze] at prebuilt objects"
        )
    return found


def _newest_versioned_clang() -> str | None:
    best: tuple[int, str] | None = None
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        try:
            names = os.listdir(directory or ".")
        except OSError:
            continue
        for name in names:
            match = _VERSIONED_CLANG.fullmatch(name)
            path = os.path.join(directory, name)
            if match and os.access(path, os.X_OK) and os.path.isfile(path):
                candidate = (int(match.group(1)), path)
                if best is None or candidate[0] > best[0]:
                    best = candidate
    return best[1] if best else None


def _probe(clang_path: str, cache_dir: Path) -> _Clang:
    """Version and host include dirs of one clang, cached by the binary's identity."""
    real = os.path.realpath(clang_path)
    st = os.stat(real)
    identity = f"{real}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}"
    probe_file = cache_dir / "clang" / f"{_sha256(identity.encode())}.json"
    try:
        data = json.loads(probe_file.read_text())
        return _Clang(clang_path, data["version"], tuple(data["system_includes"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass  # absent or damaged: probe again
    version_out = _run([clang_path, "--version"], PROBE_TIMEOUT_S, what=clang_path)
    version = next((line for line in version_out.stdout.splitlines() if line.strip()), "")
    # <linux/bpf.h> needs <asm/types.h>, which lives in the host's multiarch include
    # dir; -target bpf drops that dir, so add the host's list back with -idirafter
    # (the way libbpf-bootstrap's Makefiles do).
    verbose = _run(
        [clang_path, "-v", "-E", "-x", "c", os.devnull], PROBE_TIMEOUT_S, what=clang_path
    )
    includes = _search_list(verbose.stderr)
    _write_atomic(
        probe_file, json.dumps({"version": version, "system_includes": includes}).encode()
    )
    return _Clang(clang_path, version, tuple(includes))


def _search_list(verbose_stderr: str) -> list[str]:
    dirs: list[str] = []
    inside = False
    for line in verbose_stderr.splitlines():
        if line.startswith("#include <...> search starts here:"):
            inside = True
        elif line.startswith("End of search list."):
            break
        elif inside and line.startswith(" "):
            dirs.append(line.strip().removesuffix(" (framework directory)"))
    return dirs


def _compile_args(clang: _Clang, settings: BuildSettings) -> list[str]:
    args = list(BASE_FLAGS)
    user_defines = [*settings.defines, *(f[2:] for f in settings.flags if f.startswith("-D"))]
    arch = _TARGET_ARCH.get(platform.machine().lower())
    if arch and not any(d.startswith("__TARGET_ARCH_") for d in user_defines):
        args.append(f"-D__TARGET_ARCH_{arch}")
    args += [f"-I{Path(d).resolve()}" for d in settings.include_dirs]
    args += [f"-D{d}" for d in settings.defines]
    args += settings.flags
    args += [f"-idirafter{d}" for d in clang.system_includes]
    return args


def _compile_one(clang: _Clang, args: list[str], source: Path, cache_dir: Path) -> Path:
    try:
        source_bytes = source.read_bytes()
    except OSError as exc:
        raise BpfLintError(f"{source}: cannot read: {exc.strerror}") from exc
    k1 = _sha256(
        json.dumps(
            {
                "clang": clang.version,
                "args": args,
                "source": str(source),
                "content": _sha256(source_bytes),
            }
        ).encode()
    )
    object_name = source.name.removesuffix(".c") + ".o"
    manifest = cache_dir / "deps" / f"{k1}.json"
    headers = _read_manifest(manifest)
    if headers is not None:
        cached = cache_dir / "obj" / _content_key(k1, headers) / object_name
        if cached.is_file():
            return cached

    tmp_root = cache_dir / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp_root) as work:
        tmp_obj = Path(work) / object_name
        dep_file = Path(work) / "deps.d"
        argv = [clang.path, *args, "-c", str(source), "-MD", "-MF", str(dep_file),
                "-o", str(tmp_obj)]
        result = _run(argv, COMPILE_TIMEOUT_S, what=str(source), check=False)
        if result.returncode != 0 or not tmp_obj.is_file():
            raise BpfLintError(f"{source}: clang failed: {_first_errors(result.stderr)}")
        headers = [h for h in _parse_depfile(dep_file.read_text()) if Path(h) != source]
        out = cache_dir / "obj" / _content_key(k1, headers) / object_name
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp_obj, out)
    _write_atomic(manifest, json.dumps(headers).encode())
    return out


def _content_key(k1: str, headers: Iterable[str]) -> str:
    digest = hashlib.sha256(k1.encode())
    for header in sorted(headers):
        digest.update(b"\0" + header.encode() + b"\0")
        try:
            digest.update(_sha256(Path(header).read_bytes()).encode())
        except OSError:
            digest.update(b"<missing>")  # a deleted header must force a recompile
    return digest.hexdigest()[:32]


def _read_manifest(manifest: Path) -> list[str] | None:
    try:
        headers = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(headers, list) or not all(isinstance(h, str) for h in headers):
        return None
    return headers


def _parse_depfile(text: str) -> list[str]:
    """Prerequisites of a make-style depfile (`obj: src hdr1 hdr2 \\` ...), absolute."""
    body = text.replace("\\\n", " ")
    _, _, prereqs = body.partition(": ")
    paths: list[str] = []
    current: list[str] = []
    chars = iter(prereqs.replace("$$", "$"))
    for char in chars:
        if char == "\\":
            current.append(next(chars, ""))  # "\ " is a space inside a file name
        elif char.isspace():
            if current:
                paths.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        paths.append("".join(current))
    return sorted({str(Path(p).resolve()) for p in paths})


def _first_errors(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    if not errors:
        return lines[0] if lines else "no output from the compiler"
    shown = "; ".join(errors[:MAX_ERROR_LINES])
    more = len(errors) - MAX_ERROR_LINES
    return f"{shown} (and {more} more)" if more > 0 else shown


def _run(
    argv: list[str], timeout_s: float, what: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout_s,
            stdin=subprocess.DEVNULL, errors="replace",
        )
    except subprocess.TimeoutExpired as exc:
        raise BpfLintError(f"{what}: clang did not finish within {timeout_s:.0f}s") from exc
    except OSError as exc:
        raise BpfLintError(f"{argv[0]}: cannot run clang: {exc.strerror}") from exc
    if check and result.returncode != 0:
        raise BpfLintError(f"{argv[0]}: clang failed: {_first_errors(result.stderr)}")
    return result


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
