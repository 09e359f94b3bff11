#!/usr/bin/env bash
# `stratos validate` on the GPU machine, from the repository root, carrying .device and
# dist-validate (built here by `node experiments/validate/bundle.mjs`: the CLI bundle and the
# traces). Usage: bash experiments/validate/run-device.sh [--only a,b]. Logs and report under
# dist-validate/out (logs already there are kept: a call with --only adds workloads), returned as
# $OUT/validate-out.tgz. STRATOS_BUILD_DIR reuses an addon build (default build-validate).
set -o pipefail
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
source .device/env.sh
BUILD=${STRATOS_BUILD_DIR:-build-validate}
bash native/device-build.sh "$BUILD" >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
export STRATOS_NATIVE_PATH="$PWD/$BUILD/stratos_native.node"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader | tee "$OUT/device.txt"
node dist-validate/stratos.mjs validate --config experiments/validate/h200.yaml --out dist-validate/out --traces dist-validate/traces "$@" 2>&1 | tee -a "$OUT/validate-log.txt"
rc=${PIPESTATUS[0]}
# One archive: the device's file return drops deep folders.
tar czf "$OUT/validate-out.tgz" -C dist-validate out
cp dist-validate/out/report.md "$OUT/" 2>/dev/null
exit $rc
