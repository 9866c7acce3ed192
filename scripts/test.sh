#!/usr/bin/env bash
# The README's test command: set up, then run every test (unit and integration against real servers).
# The test session itself starts the Docker engine (if none runs), OCI registries and moto on free
# 127.0.0.1 ports, and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGECTL_SETUP_AIRFLOW2=1 ./scripts/setup.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
