#!/usr/bin/env bash
# The main job on the shipped examples: install bpflint into a virtual environment,
# then check every example project against its budgets (no clang needed).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e .
status=0
for project in examples/*/; do
    echo "== ${project}"
    .venv/bin/bpflint check --config "${project}bpfbudget.toml" || status=$?
done
exit "$status"
