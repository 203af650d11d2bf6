"""Build step: compile `.bpf.c` sources into cached BPF objects before analysis
(compile.py), or run the user's build command at a base revision (command.py).

Only the settings load with the package: the other two modules are imported where
they run, so a check of ready objects never imports subprocess and the rest."""

from bpflint.build.settings import BuildSettings, is_bpf_source

__all__ = ["BuildSettings", "is_bpf_source"]
