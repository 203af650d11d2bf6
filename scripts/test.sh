#!/usr/bin/env bash
# The test suite: a virtual environment with bpflint and its test extras, the compiled
# core built in place (scripts/native.py; it needs a C compiler), then pytest twice:
# on the compiled core and on the pure-Python sources (BPFLINT_PURE_PYTHON=1).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
mkdir -p build
.venv/bin/python scripts/native.py build > build/native.log 2>&1 \
    || { tail -n 20 build/native.log; echo "test.sh: building the compiled core failed"; exit 1; }
.venv/bin/python scripts/native.py status
echo "test.sh: the suite on the compiled core"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
echo "test.sh: the suite on pure Python"
BPFLINT_PURE_PYTHON=1 exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
