"""Build step: compile `.bpf.c` sources into cached BPF objects before analysis."""

from bpflint.build.compile import BuildSettings, compile_sources, is_bpf_source

__all__ = ["BuildSettings", "compile_sources", "is_bpf_source"]
