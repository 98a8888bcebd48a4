#!/usr/bin/env bash
# Install Mesa's EGL, OpenGL ES and llvmpipe: the software WebGPU adapter for the webgpu backend
# (src/engine/webgpu/device.ts: Dawn's OpenGL ES backend, feature level "compatibility", over
# EGL's surfaceless platform) on machines without a GPU, e.g. CI. Dawn's Vulkan backend rejects
# Mesa 22's lavapipe, so Vulkan drivers do not help. Idempotent: exits 0 at once when the
# packages are present. Usage: scripts/install-webgpu-adapter.sh   (as root, or with sudo)
set -euo pipefail

PACKAGES=(libegl1 libgles2 libegl-mesa0 libgl1-mesa-dri)

missing() {
  local out=()
  for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then out+=("$p"); fi
  done
  echo "${out[@]:-}"
}

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-webgpu-adapter.sh: needs apt-get (Debian or Ubuntu); install Mesa's libEGL, libGLESv2 and llvmpipe another way" >&2
  exit 1
fi
todo="$(missing)"
if [ -z "$todo" ]; then
  echo "install-webgpu-adapter.sh: ${PACKAGES[*]} already installed"
  exit 0
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi

"${SUDO[@]}" apt-get update -q
# shellcheck disable=SC2086
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $todo
todo="$(missing)"
[ -z "$todo" ] || { echo "install-webgpu-adapter.sh: still missing after the install: $todo" >&2; exit 1; }
echo "install-webgpu-adapter.sh: ${PACKAGES[*]} installed"
