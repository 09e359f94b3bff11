#!/usr/bin/env bash
# Prefill per-op profile on 7B and 13B (issue 7's 13B miss). From the repository root with .device
# and dist-prof carried (node engine/runtime/gpu-check/bundle9.mjs here):
#   bash engine/runtime/gpu-check/run9.sh [TOKENS...]   (the log also has each GEMM shape's tuning and pick: STRATOS_GEMM_LOG=1)
#   bash engine/runtime/gpu-check/run9.sh data          (calibration/gemm-data.ts: GEMM time on the calibration's data vs the engine's)
set -o pipefail
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
source .device/env.sh
bash native/device-build.sh build-prof > "$OUT/build-prof.log" 2>&1 || { tail -40 "$OUT/build-prof.log"; exit 1; }
echo "build done at ${SECONDS}s"
export STRATOS_NATIVE_PATH="$PWD/build-prof/stratos_native.node"
if [ "$1" = data ]; then
  STRATOS_GEMM_LOG=1 node dist-prof/gemm-data.mjs "$OUT" 2>&1 | tee "$OUT/gemm-data-log.txt"
else
  STRATOS_GEMM_LOG=1 node dist-prof/run9.mjs "$OUT" "$@" 2>&1 | tee "$OUT/engine-log-prof.txt"
fi
echo "all done at ${SECONDS}s"
