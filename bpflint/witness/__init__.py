"""Worst-case witnesses: a concrete input that drives a program along its dearest
path, executed by the reference interpreter (bpflint/interp) to show how much of the
bound a real run reaches (docs/witness.md)."""
