#!/usr/bin/env bash
# Builds the addon on the GPU machine (build dir build-calib) and runs the calibration.
# Needs .device (../shared/device/prepare.sh) and dist-calib/calibrate.mjs (node calibration/bundle.mjs).
# Usage on the device:  bash calibration/run.sh [runner args, e.g. --grid quick --models llama2-7b]
# Writes $OUT/samples.csv, $OUT/run-log.txt and $OUT/build.log.
set -o pipefail
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
source .device/env.sh
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm,temperature.gpu,power.limit --format=csv 2>&1 | tee "$OUT/build.log"
t0=$(date +%s)
bash native/device-build.sh build-calib >>"$OUT/build.log" 2>&1 || { tail -60 "$OUT/build.log"; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s" | tee -a "$OUT/build.log"
export STRATOS_NATIVE_PATH="$PWD/build-calib/stratos_native.node"
node dist-calib/calibrate.mjs --out "$OUT/samples.csv" "$@" 2>&1 | tee "$OUT/run-log.txt"
