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
# change of pyproject.toml or of this file (a stamp file remembers what was installed).
ensure_venv() {
  local extras="$1" stamp=".venv/.installed-$1" want
  want="$(cat pyproject.toml scripts/_env.sh | sha256sum | cut -d' ' -f1)"
  if [ ! -x .venv/bin/python ]; then
    "$(find_python)" -m venv .venv
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "installing tether[$extras] into .venv (the first time compiles llama-cpp-python: ~6 minutes)" >&2
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    case ",$extras," in *,local,*) install_llama_cpp ;; esac
    .venv/bin/python -m pip install -q -e ".[$extras]"
    echo "$want" > "$stamp"
  fi
}

# llama-cpp-python compiles llama.cpp for this machine's CPU (-march=native). Some virtual
# machines advertise Intel AMX but fault on its instructions, and the model then dies with
# SIGILL on its first token; a model of SmolLM2's size gains nothing from AMX. So on x86-64
# llama.cpp is built without it (unless CMAKE_ARGS, CFLAGS or CXXFLAGS say how to build), into a
# wheel directory of tether's own keyed by the flags and the CPU: pip's own cache ignores build
# flags, so a wheel it built before would come back.
install_llama_cpp() {
  local spec flags key dir wheel
  [ "$(uname -m)" = x86_64 ] && [ -z "${CMAKE_ARGS:-}${CFLAGS:-}${CXXFLAGS:-}" ] || return 0
  flags="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  echo 'int main(void) { return 0; }' | ${CC:-cc} $flags -x c - -o /dev/null 2>/dev/null || return 0  # an older compiler emits no AMX
  spec="$(grep -o '"llama-cpp-python[^"]*"' pyproject.toml | tr -d '"')"
  key="$( (echo "$spec $flags"; grep -m1 '^flags' /proc/cpuinfo || true) | sha256sum | cut -c1-16)"
  dir="${XDG_CACHE_HOME:-$HOME/.cache}/tether/llama-cpp-python/$key"
  if ! ls "$dir"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    rm -rf "$dir.part"
    CFLAGS="$flags" CXXFLAGS="$flags" .venv/bin/python -m pip wheel -q --no-deps --no-cache-dir --no-binary llama-cpp-python \
      -w "$dir.part" "$spec"
    mkdir -p "$(dirname "$dir")" && rm -rf "$dir" && mv "$dir.part" "$dir"
  fi
  wheel="$(ls "$dir"/llama_cpp_python-*.whl | head -1)"
  .venv/bin/python -m pip install -q --force-reinstall --no-deps "$wheel"
}
