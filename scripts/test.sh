#!/usr/bin/env bash
# The README's test command: set up, then run every test (unit and integration against real servers).
# The test session itself starts the Docker engine (if none runs), OCI registries and moto on free
# 127.0.0.1 ports, and stops what it started. Arguments go to pytest (e.g. scripts/test.sh tests/unit).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."

step "setup" "its own line above says which of its steps failed"
IMAGECTL_SETUP_AIRFLOW2=1 ./scripts/setup.sh
step "ruff" "fix what ruff lists above (.venv/bin/ruff check --fix . fixes some)"
.venv/bin/ruff check .
step "mypy" "fix the type errors mypy lists above"
.venv/bin/mypy
step "pytest" "the failed tests are listed above"
.venv/bin/python -m pytest "$@"
