#!/usr/bin/env bash
# Prefill per-op profile on 7B and 13B (issue 7's 13B miss). From the repository root with .device
# and dist-prof carried (node engine/runtime/gpu-check/bundle9.mjs here):
#   bash engine/runtime/gpu-check/run9.sh [TOKENS...]   (the log also has each GEMM shape's tuning and pick: STRATOS_GEMM_LOG=1)
set -o pipefail
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
source .device/env.sh
bash native/device-build.sh build-prof > "$OUT/build-prof.log" 2>&1 || { tail -40 "$OUT/build-prof.log"; exit 1; }
echo "build done at ${SECONDS}s"
STRATOS_GEMM_LOG=1 STRATOS_NATIVE_PATH="$PWD/build-prof/stratos_native.node" node dist-prof/run9.mjs "$OUT" "$@" 2>&1 | tee "$OUT/engine-log-prof.txt"
echo "all done at ${SECONDS}s"
