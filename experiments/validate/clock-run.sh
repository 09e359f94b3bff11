#!/usr/bin/env bash
# Engine runs with the SM clock, board power and the power-cap flag logged every 50 ms (nvidia-smi),
# on the GPU machine, from the repository root, carrying .device and dist-validate (built here by
# `node experiments/validate/bundle.mjs`). One engine run per workload; the capacity run comes
# first when a workload needs it. Usage: bash experiments/validate/clock-run.sh a,b,c
# Returns $OUT/clocks.csv, $OUT/validate-log.txt (each line stamped with the epoch second, which
# aligns the plan logs with the clock log) and $OUT/clock-out.tgz (the validate logs, folder logs/:
# unpack it into the results folder beside clocks.csv). STRATOS_BUILD_DIR reuses another build of
# the addon (e.g. build-gpu of native/gpu-tests/run.sh in the same call); default build-validate.
# Analysis: npx tsx experiments/validate/clocks.ts DIR (DIR = clocks.csv, validate-log.txt, logs/).
set -o pipefail
[ -n "$1" ] || { echo "usage: bash experiments/validate/clock-run.sh workload[,workload...]" >&2; exit 2; }
OUT=${OUT:-$PWD/out}; mkdir -p "$OUT"
source .device/env.sh
BUILD=${STRATOS_BUILD_DIR:-build-validate}
bash native/device-build.sh "$BUILD" >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
export STRATOS_NATIVE_PATH="$PWD/$BUILD/stratos_native.node"
sed 's/^runs: .*/runs: 1/' experiments/validate/h200.yaml > dist-validate/h200-1run.yaml
nvidia-smi --query-gpu=name,power.limit,clocks.max.sm,clocks.applications.graphics --format=csv | tee "$OUT/device.txt"
Q=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,utilization.gpu,clocks_event_reasons.sw_power_cap,clocks_event_reasons.hw_slowdown,clocks_event_reasons.sw_thermal_slowdown
nvidia-smi --query-gpu=$Q --format=csv -lms 50 > "$OUT/clocks.csv" 2>"$OUT/smi.err" &
SMI=$!
sleep 1
# Older drivers lack the clocks_event_reasons fields: log without the power-cap flag.
if ! kill -0 $SMI 2>/dev/null; then
  nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,utilization.gpu --format=csv -lms 50 > "$OUT/clocks.csv" &
  SMI=$!
fi
stamp() { while IFS= read -r l; do echo "$(date +%s.%N) $l"; done; }
echo "start" | stamp | tee "$OUT/validate-log.txt"
rm -rf dist-validate/logs
node dist-validate/stratos.mjs validate --config dist-validate/h200-1run.yaml --out dist-validate/logs --traces dist-validate/traces --only "$1" 2>&1 | stamp | tee -a "$OUT/validate-log.txt"
rc=${PIPESTATUS[0]}
kill $SMI
tar czf "$OUT/clock-out.tgz" -C dist-validate logs
exit $rc
