#!/usr/bin/env bash
# Set up (see setup.sh), then lint, type-check the engine and run the whole test suite
# (arguments go to pytest: `bash scripts/test.sh -m "not slow"` is the fast tier).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy  # engine/ (configured in pyproject.toml)
.venv/bin/python -m pytest -q --durations=20 "$@"
