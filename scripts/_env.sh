# Shared by scripts/demo.sh and scripts/test.sh: find Python >= 3.11, create .venv, install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

find_python() {
  for py in "${PYTHON:-}" python3 python3.13 python3.12 python3.11 python; do
    [ -n "$py" ] || continue
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  echo "error: tether needs Python 3.11 or newer; install it or set PYTHON=/path/to/python3.11" >&2
  return 1
}

# ensure_venv EXTRAS: create .venv and install the project with the given extras, once per
# change of pyproject.toml (a stamp file remembers what was installed).
ensure_venv() {
  local extras="$1" stamp=".venv/.installed-$1" want
  want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
  if [ ! -x .venv/bin/python ]; then
    "$(find_python)" -m venv .venv
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "installing tether[$extras] into .venv (the first time compiles llama-cpp-python: ~6 minutes)" >&2
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e ".[$extras]"
    echo "$want" > "$stamp"
  fi
}
