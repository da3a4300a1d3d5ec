#!/usr/bin/env bash
# The demo: install, start the embedded engine, run the invoice workflow end to end.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
ensure_venv local
exec .venv/bin/tether run examples/invoice.py:process_invoice --input @examples/invoice.json "$@"
