"""Build step: compile `.bpf.c` sources into cached BPF objects before analysis, or
run the user's build command at a base revision."""

from bpflint.build.command import run_build
from bpflint.build.compile import BuildSettings, compile_sources, is_bpf_source

__all__ = ["BuildSettings", "compile_sources", "is_bpf_source", "run_build"]
