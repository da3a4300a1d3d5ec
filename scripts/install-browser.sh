#!/usr/bin/env bash
# Install the browser Studio's tests drive: Debian's chromium at /usr/bin/chromium.
# Nothing else is downloaded (never `playwright install`). Needs root (CI runs as root) or sudo.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-browser.sh: /usr/bin/chromium is missing; run this script as root (apt-get install -y chromium)" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
if [ ! -x /usr/bin/chromium ]; then
  echo "install-browser.sh: apt-get installed chromium but /usr/bin/chromium is not there" >&2
  exit 1
fi
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo installed)"
