#!/usr/bin/env bash
# The tests: install dev dependencies, lint, type-check, run the whole suite.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
ensure_venv local,dev
# Studio's browser tests drive Debian's chromium; install it when missing (needs root or sudo).
[ -x scripts/install-browser.sh ] && scripts/install-browser.sh
.venv/bin/ruff check src tests examples benchmarks
.venv/bin/python -m mypy
.venv/bin/python -m pytest "$@"
