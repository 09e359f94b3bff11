#!/usr/bin/env bash
# One device call for what only an H200 can settle (issues 6 and 7), most wanted first, each result straight
# into $OUT (at most 8 files come back) so that a call cut short still returns what it finished:
#   0. the GEMV checks (native/gpu-tests/gemv.ts; since 2026-12-08 they also check paged decode's fused merge,
#      now owned by one (device, stream), against the merge kernel, a change not yet run on a GPU);
#   1. the 7B batch-1 decode variants (run7 7b-fused: L2 prefetch, rope in attention) and decode attention on
#      uneven contexts (experiments/validate/decode-uneven.ts), and GEMMs against their weights' footprint
#      (calibration/gemm-footprint.ts) on any card;
#   2. the lora table for the new shrink kernel (that card's), any card;
#   3. H200 only: lora-mix-7b on the engine (validate), then the 13B GEMMs on the engine's own operands if time is left.
# Elsewhere the GEMV checks (native/gpu-tests/gemv.ts) and the GPU suite's lora cases run last (they passed on an H100). Carry .device dist dist-graph dist-prof dist-calib
# dist-validate (bundles as in run10.sh, calibration/bundle.mjs, experiments/validate/bundle.mjs). Afterwards, here:
# bash calibration/runs/refit-h200-lora.sh OUT/calib/lora-samples.csv (the H200 profile's lora tables, and the A100's).
set -o pipefail
O=$OUT
mkdir -p $O/r10 $O/calib
source .device/env.sh
name=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
echo "card: $name"
OUT=$O/r10 bash engine/runtime/gpu-check/run10.sh gemv 7b uneven footprint; rc=$?
export STRATOS_NATIVE_PATH=$PWD/build-gpu/stratos_native.node
node dist-calib/calibrate.mjs --out $O/calib/lora-samples.csv --families lora --budget-s 120 2>&1 | tee $O/calib/run-log.txt
echo "calib done at ${SECONDS}s"
case "$name" in
  *H200*)
    mkdir -p $O/h200
    # lora-mix-7b first (the new LoRA kernels on the engine, against the committed runs' capacity), then the
    # 13B operands check while the call has time left.
    mkdir -p dist-validate/out && cp -r experiments/validate/results/h200/logs dist-validate/out/
    # --trace-gc: the LoRA mix's decode steps that run past 1.2x their price (experiments/validate/gpu-spikes.ts)
    # against the collector's pauses, one line per pause in validate-log.txt.
    NODE_OPTIONS=--trace-gc STRATOS_BUILD_DIR=build-gpu OUT=/tmp/val bash experiments/validate/run-device.sh --only lora-mix-7b
    cp /tmp/val/validate-out.tgz /tmp/val/validate-log.txt $O/h200/
    echo "validate done at ${SECONDS}s"
    if [ $SECONDS -lt 420 ]; then
      OUT=/tmp/ops bash engine/runtime/gpu-check/run10.sh operands && cp /tmp/ops/engine-gemm-operands.json $O/h200/
      echo "operands done at ${SECONDS}s"
    fi ;;
  *)
    # The GPU suite's lora cases (lora.cu's flattened tile loop) against the CPU.
    { STRATOS_GPU_ONLY=lora STRATOS_SKIP_TORCH=1 node dist/gpu-tests.mjs /tmp/gt /tmp/gtw || rc=1; } > $O/r10/gpu-checks-log.txt 2>&1
    tail -5 $O/r10/gpu-checks-log.txt ;;
esac
exit $rc
