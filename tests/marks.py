"""Marks shared by the test modules."""

from __future__ import annotations

import pytest

import bpflint.cost.engine

# A test that swaps or counts functions and constants inside the cost engine sees
# nothing of compiled code (bpflint/native.py), whose modules call each other
# directly. scripts/test.sh runs the suite a second time on the pure-Python
# sources, where these tests run.
instruments_engine = pytest.mark.skipif(
    not bpflint.cost.engine.__file__.endswith(".py"),
    reason="instruments the engine's internals, which compiled code calls directly; "
           "runs in the pure-Python pass (BPFLINT_PURE_PYTHON=1)")
