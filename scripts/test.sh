#!/usr/bin/env bash
# The test suite: a virtual environment with bpflint and its test extras, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
