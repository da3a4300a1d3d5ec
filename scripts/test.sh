#!/usr/bin/env bash
# The tests: install dev dependencies, lint, type-check, run the whole suite.
#   scripts/test.sh            everything (what CI runs)
#   scripts/test.sh --fast     lint, types and the tests that need no server, model or browser
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
FAST=0
if [ "${1:-}" = "--fast" ]; then FAST=1; shift; fi
ensure_venv local,dev
.venv/bin/ruff check src tests examples benchmarks
.venv/bin/python -m mypy
.venv/bin/lint-imports --no-cache   # the layers, no long import cycles, temporalio only in the engine
if [ "$FAST" = 1 ]; then
  TETHER_FAST_LANE=1 exec .venv/bin/python -m pytest -m "not server and not local_model and not browser and not slow" "$@"
fi
# Studio's browser tests drive Debian's chromium; install it when missing (needs root or sudo).
[ -x scripts/install-browser.sh ] && scripts/install-browser.sh
.venv/bin/python -m pytest "$@"
