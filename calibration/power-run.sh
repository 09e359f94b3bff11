#!/usr/bin/env bash
# The power microbenchmark on the GPU machine (calibration/power-bench.ts), with nvidia-smi logging
# the SM clock, board power and the power-cap flag every 50 ms beside it.
# Needs .device and dist-power/power-bench.mjs (node calibration/bundle.mjs power, here).
# Usage on the device:  bash calibration/power-run.sh   (STRATOS_BUILD_DIR reuses a build; default build-calib)
# Writes $OUT/power-bench.json, $OUT/power-smi.csv and $OUT/power-log.txt.
set -o pipefail
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
source .device/env.sh
BUILD=${STRATOS_BUILD_DIR:-build-calib}
bash native/device-build.sh "$BUILD" >>"$OUT/power-build.log" 2>&1 || { tail -40 "$OUT/power-build.log"; exit 1; }
export STRATOS_NATIVE_PATH="$PWD/$BUILD/stratos_native.node"
Q=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,utilization.gpu,clocks_event_reasons.sw_power_cap
nvidia-smi --query-gpu=$Q --format=csv -lms 50 > "$OUT/power-smi.csv" 2>/dev/null &
SMI=$!
sleep 1
node dist-power/power-bench.mjs "$OUT/power-bench.json" 2>&1 | tee "$OUT/power-log.txt"
rc=${PIPESTATUS[0]}
kill $SMI 2>/dev/null
exit $rc
