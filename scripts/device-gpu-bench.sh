#!/usr/bin/env bash
# The GPU comparison of issue 16 on the device machine (NVIDIA H200, no Node.js, no internet):
# the training-step workloads (reference, tiny, small, large = 4,096 dense columns) on the webgpu
# backend (Dawn over Vulkan) and in PyTorch on CUDA (bench/torch_step.py, the image's python3),
# one table: workload, webgpu ms, torch cuda ms, ratio. Needs .device/ and .gl/ from
# scripts/prepare-device-bundle.sh, carried with the call (carry [".device", ".gl"]):
#
#   scripts/device-gpu-bench.sh            # on the device machine; results under $OUT
#
# It fails loudly (exit != 0) when the loaders, the NVIDIA Vulkan driver, the WebGPU adapter or
# CUDA are missing: no fallback to a software adapter or to the CPU. Whole run bounded by
# GPU_BENCH_TIMEOUT_S (default 480 s); each row by GPU_BENCH_ROW_TIMEOUT_S (default 120 s).
#
# Dry run on a machine without a GPU (software adapter, torch on the CPU, the tiny workload with
# one timed step; nothing unpacked into /):
#   GPU_BENCH_DRY_RUN=1 GPU_BENCH_PYTHON=/path/to/python-with-torch scripts/device-gpu-bench.sh
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${OUT:-/tmp/cf-gpu-bench-out}
mkdir -p "$out"
exec > >(tee "$out/device-gpu-bench.log") 2>&1
fail() { echo "device-gpu-bench: FAILED: $*"; exit 1; }
dry=${GPU_BENCH_DRY_RUN:-0}
[ -f .device/node.xz ] && [ -f .device/gpu-bench.mjs ] || fail ".device/ is missing or incomplete: run scripts/prepare-device-bundle.sh here and carry .device"
cat .device/MANIFEST 2>/dev/null

if [ "$dry" != 1 ]; then
  # the loaders (README.md's recipe): unpack the carried debs into /, then check the loader
  if ! ldconfig -p | grep -q libvulkan.so.1; then
    ls .gl/*.deb >/dev/null 2>&1 || fail "no libvulkan on this machine and no .gl/*.deb carried"
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  ldconfig -p | grep -q libvulkan.so.1 || fail "libvulkan.so.1 still not found after unpacking .gl"
  icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  # the README's advice where no driver is found; harmless where one is registered too
  if [ -f "$icd" ] && [ -z "${VK_DRIVER_FILES:-}" ]; then
    export VK_DRIVER_FILES=$icd VK_ICD_FILENAMES=$icd
    export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  fi
  echo "device-gpu-bench: VK_DRIVER_FILES=${VK_DRIVER_FILES:-<default search>}"
  ls /etc/vulkan/icd.d /usr/share/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d 2>/dev/null
  command -v nvidia-smi >/dev/null || fail "no nvidia-smi: not an NVIDIA machine"
  nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.mem --format=csv || fail "nvidia-smi failed"
  # Dawn alone on Vulkan, core: an OpenGL ES or software adapter would not be the GPU's figures
  export COLUMNFORMER_WEBGPU_FLAGS=${COLUMNFORMER_WEBGPU_FLAGS:-backend=vulkan}
  export GPU_BENCH_TORCH_DEVICE=${GPU_BENCH_TORCH_DEVICE:-cuda}
  py=${GPU_BENCH_PYTHON:-python3}
  "$py" -c 'import torch, sys; ok = torch.cuda.is_available(); print("device-gpu-bench: torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0) if ok else "NO CUDA"); sys.exit(0 if ok else 1)' ||
    fail "python3's torch sees no CUDA device"
else
  echo "device-gpu-bench: DRY RUN (software adapter allowed, torch on the CPU, nothing unpacked into /)"
  export GPU_BENCH_ALLOW_SOFTWARE=1 GPU_BENCH_TORCH_DEVICE=${GPU_BENCH_TORCH_DEVICE:-cpu}
  export GPU_BENCH_WORKLOADS=${GPU_BENCH_WORKLOADS:-tiny} GPU_BENCH_REPEATS=${GPU_BENCH_REPEATS:-1}
fi

# node and dawn.node, uncompressed outside the tree (xz, else python3's lzma)
w=${GPU_BENCH_WORK:-/tmp/cf-device}
rm -rf "$w" && mkdir -p "$w" && cp -r .device/node_modules .device/gpu-bench.mjs "$w/" || fail "could not copy .device to $w"
unxz_to() { if command -v xz >/dev/null; then xz -dc "$1" > "$2"; else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi; }
unxz_to .device/node.xz "$w/node" && chmod +x "$w/node" || fail "could not unpack node"
unxz_to .device/node_modules/webgpu/dist/linux-x64/dawn.node.xz "$w/node_modules/webgpu/dist/linux-x64/dawn.node" || fail "could not unpack dawn.node"
rm -f "$w/node_modules/webgpu/dist/linux-x64/dawn.node.xz"
echo "device-gpu-bench: node $("$w/node" --version)" || fail "the carried node does not run here"
export COLUMNFORMER_NATIVE_ADDON=$root/.device/columnformer_native.node
export GPU_BENCH_OUT=$out GPU_BENCH_ROW_TIMEOUT_S=${GPU_BENCH_ROW_TIMEOUT_S:-120}

# device memory: Dawn reports none, so nvidia-smi samples the GPU's used memory every 250 ms
sampler=
if [ "$dry" != 1 ]; then
  nvidia-smi --query-gpu=timestamp,memory.used --format=csv,noheader,nounits -lms 250 > "$out/gpu-memory.csv" 2>/dev/null &
  sampler=$!
fi
timeout "${GPU_BENCH_TIMEOUT_S:-480}" "$w/node" "$w/gpu-bench.mjs"
rc=$?
if [ -n "$sampler" ]; then
  kill "$sampler" 2>/dev/null
  wait "$sampler" 2>/dev/null
  awk -F', ' '$2 + 0 > m {m = $2 + 0} END {printf "device-gpu-bench: peak GPU memory used (nvidia-smi, whole device, 250 ms samples): %d MiB\n", m}' "$out/gpu-memory.csv"
fi
[ "$rc" = 124 ] && echo "device-gpu-bench: FAILED: the benchmark ran past GPU_BENCH_TIMEOUT_S; the rows done are in $out/gpu-bench.md"
[ "$rc" = 0 ] || echo "device-gpu-bench: FAILED (exit $rc)"
exit "$rc"
