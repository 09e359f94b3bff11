#!/usr/bin/env bash
# Final CUDA-graph run (issue 6): tiny graph-vs-eager tokens; the 7B default path vs graphs + fused
# q/k/v with decode splits of 128/64/32 tokens; the per-op profile with the 32-token split.
# From the repository root with .device and dist-graph carried:
#   node engine/runtime/gpu-check/bundle7.mjs       (here)
#   bash engine/runtime/gpu-check/run7-final.sh     (on the device)
set -o pipefail
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
source .device/env.sh
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$OUT/build-final.log" 2>&1
bash native/device-build.sh build-graph >>"$OUT/build-final.log" 2>&1 || { tail -40 "$OUT/build-final.log"; exit 1; }
echo "build done at ${SECONDS}s"
export STRATOS_NATIVE_PATH="$PWD/build-graph/stratos_native.node"
node dist-graph/run7.mjs "$OUT" tiny 2>&1 | tee "$OUT/engine-log-final.txt"
node dist-graph/run7.mjs "$OUT" 7b-final 2>&1 | tee -a "$OUT/engine-log-final.txt"
STRATOS_PROF_MIN_SPLIT=32 node dist-graph/run7.mjs "$OUT" prof 2>&1 | tee -a "$OUT/engine-log-final.txt"
echo "all done at ${SECONDS}s"
