#!/usr/bin/env bash
# Prepare what the device machine (no Node.js, no internet) needs for scripts/device-gpu-bench.sh,
# in two git-ignored folders of the repository's root, to be named in the device tool's `carry`:
#
#   .device/  node.xz            this machine's Node 20 binary (x86-64, linked only against glibc
#                                2.28+ and libstdc++, checked with ldd), xz-compressed (~24 MiB)
#             gpu-bench.mjs      bench/gpu-bench.ts and all it imports, bundled with esbuild
#                                (sharp stubbed: no images are decoded; webgpu left external)
#             node_modules/webgpu/{package.json,index.js,dist/linux-x64/dawn.node.xz}
#             node_modules/@jax-js/jax/  (its package.json is read for the version; dist/ for Wasm)
#             columnformer_native.node   the native addon (build/Release), used for host AdamW
#             MANIFEST            versions and sizes
#   .gl/      the Vulkan / EGL loaders as Debian packages (libvulkan1 libegl1 libglvnd0 libopengl0
#             libgl1 libglx0 libgles2), as /work/.library/device/README.md prescribes, unpacked
#             into / on the device machine; skipped when already there (or with SKIP_GL=1).
#
# It prints the size of everything that would travel (tracked + untracked-not-ignored files +
# the two carried folders), which must stay under 64 MiB. Run from anywhere:
#   scripts/prepare-device-bundle.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
node_bin=${NODE_BIN:-$(command -v node)}
[ -x "$node_bin" ] || { echo "prepare-device-bundle: no node binary (set NODE_BIN)" >&2; exit 1; }
[ "$(uname -m)" = x86_64 ] || { echo "prepare-device-bundle: this machine is $(uname -m); the device machine needs an x86-64 node" >&2; exit 1; }
ver=$("$node_bin" --version)
case "$ver" in v20.*|v22.*) ;; *) echo "prepare-device-bundle: node $ver; want Node 20" >&2; exit 1 ;; esac
# only glibc and libstdc++: nothing the device image would lack
if ldd "$node_bin" | grep -v -E 'linux-vdso|libdl\.|libstdc\+\+|libm\.|libgcc_s|libpthread|libc\.|ld-linux' | grep -q .; then
  echo "prepare-device-bundle: $node_bin needs more than glibc and libstdc++:" >&2; ldd "$node_bin" >&2; exit 1
fi
dawn=node_modules/webgpu/dist/linux-x64/dawn.node
addon=build/Release/columnformer_native.node
[ -f "$dawn" ] || { echo "prepare-device-bundle: $dawn missing (npm ci)" >&2; exit 1; }
[ -f "$addon" ] || { echo "prepare-device-bundle: $addon missing (npm run build:native)" >&2; exit 1; }

d=.device
mkdir -p "$d/node_modules/webgpu/dist/linux-x64" "$d/node_modules/@jax-js"
# the node binary: compressed once per version (xz takes about a minute)
if [ ! -f "$d/node.xz" ] || [ "$(cat "$d/node.version" 2>/dev/null)" != "$ver $(sha256sum < "$node_bin" | cut -c1-16)" ]; then
  echo "prepare-device-bundle: compressing $node_bin ($ver) ..."
  xz -T0 -6 -c "$node_bin" > "$d/node.xz.tmp" && mv "$d/node.xz.tmp" "$d/node.xz"
  echo "$ver $(sha256sum < "$node_bin" | cut -c1-16)" > "$d/node.version"
fi
if [ ! -f "$d/node_modules/webgpu/dist/linux-x64/dawn.node.xz" ] || [ "$dawn" -nt "$d/node_modules/webgpu/dist/linux-x64/dawn.node.xz" ]; then
  xz -T0 -6 -c "$dawn" > "$d/node_modules/webgpu/dist/linux-x64/dawn.node.xz"
fi
cp node_modules/webgpu/package.json node_modules/webgpu/index.js "$d/node_modules/webgpu/"
rm -rf "$d/node_modules/@jax-js/jax" && cp -r node_modules/@jax-js/jax "$d/node_modules/@jax-js/jax"
cp "$addon" "$d/columnformer_native.node"
node_modules/.bin/esbuild bench/gpu-bench.ts --bundle --platform=node --format=esm --target=node20 --log-level=warning \
  --external:webgpu --alias:sharp=./scripts/device/sharp-stub.mjs \
  --banner:js="import { createRequire as __cfCreateRequire } from 'node:module'; const require = __cfCreateRequire(import.meta.url);" \
  --outfile="$d/gpu-bench.mjs"

# the loaders (README.md's recipe); apt-get needs the network here, not there
if [ "${SKIP_GL:-0}" != 1 ] && ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update -qq
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi

{
  echo "node $ver from $node_bin"
  echo "webgpu $(node -p "require('./node_modules/webgpu/package.json').version" 2>/dev/null)"
  echo "@jax-js/jax $(node -p "require('./node_modules/@jax-js/jax/package.json').version" 2>/dev/null)"
  echo "bundle from $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- bench src || echo ' (with uncommitted changes)')"
  ls .gl/*.deb 2>/dev/null | sed 's/^/gl /'
} > "$d/MANIFEST"

# what travels: tracked + untracked-not-ignored files, plus the carried folders
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s -- 2>/dev/null | awk '{s+=$1} END {print s+0}')
dev=$(du -sb "$d" | cut -f1)
gl=$(du -sb .gl 2>/dev/null | cut -f1 || echo 0)
total=$((tree + dev + ${gl:-0}))
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
echo "prepare-device-bundle: working tree $(mib "$tree") MiB + .device $(mib "$dev") MiB + .gl $(mib "${gl:-0}") MiB = $(mib "$total") MiB (limit 64 MiB)"
[ "$total" -lt $((64 * 1048576)) ] || { echo "prepare-device-bundle: over the 64 MiB limit" >&2; exit 1; }
