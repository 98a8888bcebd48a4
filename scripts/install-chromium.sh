#!/usr/bin/env bash
# Install Debian's Chromium (/usr/bin/chromium) for the viewer's browser test
# (test/viewer.test.ts drives it headless with playwright-core; nothing is downloaded
# by npm or playwright). Usage: scripts/install-chromium.sh   (as root, or with sudo)
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  echo "install-chromium.sh: $(/usr/bin/chromium --version 2>/dev/null || echo chromium) already installed"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium.sh: needs apt-get (Debian or Ubuntu); install Chromium as /usr/bin/chromium another way" >&2
  exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi

"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
[ -x /usr/bin/chromium ] || { echo "install-chromium.sh: /usr/bin/chromium still missing after the install" >&2; exit 1; }
echo "install-chromium.sh: $(/usr/bin/chromium --version 2>/dev/null || echo chromium) installed"
