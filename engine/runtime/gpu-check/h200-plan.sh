#!/usr/bin/env bash
# One device call for what only an H200 can settle (issues 6 and 7); on any other card it stops at once.
# Carry .device dist dist-graph dist-prof dist-calib dist-validate (bundles as in run10.sh, calibration/bundle.mjs,
# experiments/validate/bundle.mjs). Everything comes back as $OUT/h200-plan.tgz plus its logs.
set -o pipefail
O=$OUT; W=/tmp/w; mkdir -p $W/r10 $W/calib $W/val
source .device/env.sh
name=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
echo "card: $name"
case "$name" in
  *H200*) ;;
  *) echo "not an H200: the GEMV checks and the 7B batch-1 decode only"
     OUT=$W/r10 bash engine/runtime/gpu-check/run10.sh gemv 7b; rc=$?
     tar czf $O/h200-plan.tgz -C $W .; cp $W/r10/engine-log-7b-fused.txt $W/r10/gemv-log.txt $O/ 2>/dev/null; exit $rc ;;
esac
# 1. issue 6: 7B batch-1 decode (and the GEMV checks), issue 7: 13B GEMMs on the engine's own operands
OUT=$W/r10 bash engine/runtime/gpu-check/run10.sh gemv 7b operands
# 2. issue 7: the lora table for the new shrink kernel, on the same build
export STRATOS_NATIVE_PATH=$PWD/build-gpu/stratos_native.node
node dist-calib/calibrate.mjs --out $W/calib/lora-samples.csv --families lora --budget-s 170 2>&1 | tee $W/calib/run-log.txt
echo "calib done at ${SECONDS}s"
# 3. issue 7: lora-mix-7b on the engine with the new kernels (committed logs in place for the report)
mkdir -p dist-validate/out && cp -r experiments/validate/results/h200/logs dist-validate/out/
STRATOS_BUILD_DIR=build-gpu OUT=$W/val bash experiments/validate/run-device.sh --only lora-mix-7b
echo "validate done at ${SECONDS}s"
tar czf $O/h200-plan.tgz -C $W .
cp $W/r10/engine-log-7b-fused.txt $W/r10/gemv-log.txt $W/calib/run-log.txt $O/ 2>/dev/null
