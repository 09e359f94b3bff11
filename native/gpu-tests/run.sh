#!/usr/bin/env bash
# Build the addon on the GPU machine, run every CUDA op against its CPU reference and PyTorch,
# and run the benchmarks. Writes gpu-test-log.txt, perf.json and build.log into $OUT (or ./out).
# Needs: .device (from ../shared/device/prepare.sh) and dist/gpu-tests.mjs (node native/gpu-tests/bundle.mjs).
# Command used on the device:  bash native/gpu-tests/run.sh
set -o pipefail
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
source .device/env.sh
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1 | tee "$OUT/build.log"
build() { bash native/device-build.sh build-gpu "$1" >>"$OUT/build.log" 2>&1; }
if ! build ON; then
  echo "BUILD WITH cuBLAS FAILED (see build.log); retrying without it" | tee -a "$OUT/build.log"
  tail -40 "$OUT/build.log"
  rm -rf build-gpu
  build OFF || { tail -60 "$OUT/build.log"; exit 1; }
fi
grep -E "stratos:|warning|error" "$OUT/build.log" | head -20
export STRATOS_NATIVE_PATH="$PWD/build-gpu/stratos_native.node"
node dist/gpu-tests.mjs "$OUT" /tmp/stratos-gpu
