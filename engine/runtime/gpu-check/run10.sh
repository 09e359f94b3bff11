#!/usr/bin/env bash
# Fused one-row decode (issue 6, 7B batch-1 decode): decodeGemv against its CPU reference and
# cuBLAS (native/gpu-tests/gemv.ts), then the 7B batch-1 decode through it (run7.ts 7b-fused), then
# issue 7's GEMM-data check (calibration/gemm-data.ts), all on one addon build. From the repository
# root with .device, dist, dist-graph and dist-prof carried; built here by
#   node native/gpu-tests/bundle.mjs && node engine/runtime/gpu-check/bundle7.mjs && node engine/runtime/gpu-check/bundle9.mjs
# then on the device: bash engine/runtime/gpu-check/run10.sh [gemv] [7b] [prof] [data]   (default: gemv 7b data;
# prof: run7's per-op profile of a 7B decode step with the 32-token split; regress: the GPU suite's rope, kvWrite and
# pagedDecode sections and decode/copy benches, for the PDL and fused-merge changes to those kernels; operands: the
# engine's own layer-0 prefill GEMMs timed on its buffers, on copies and on the calibration's data, experiments/validate/gemm-operands.ts; lora: a 7B prefill step with adapters split into
# base forward, LoRA kernels and launch gaps, lora-steps.ts; uneven: decode attention on uneven contexts against the
# uniform batch the calibration times, experiments/validate/decode-uneven.ts; footprint: 512-row GEMMs cycling through weight
# copies spanning up to 48 GB, calibration/gemm-footprint.ts)
set -o pipefail
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
source .device/env.sh
steps=${*:-gemv 7b data}
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit,temperature.gpu --format=csv > "$OUT/build10.log" 2>&1
bash native/device-build.sh build-gpu >>"$OUT/build10.log" 2>&1 || { tail -40 "$OUT/build10.log"; exit 1; }
echo "build done at ${SECONDS}s"
export STRATOS_NATIVE_PATH="$PWD/build-gpu/stratos_native.node"
rc=0
for s in $steps; do
  case $s in
    gemv) node dist/gemv.mjs "$OUT" 2>&1 | tee "$OUT/gemv-log.txt" || rc=1 ;;
    7b) node dist-graph/run7.mjs "$OUT" 7b-fused 2>&1 | tee "$OUT/engine-log-7b-fused.txt" || rc=1 ;;
    prof) STRATOS_PROF_MIN_SPLIT=32 node dist-graph/run7.mjs "$OUT" prof 2>&1 | tee "$OUT/engine-log-prof.txt" || rc=1 ;;
    regress) STRATOS_GPU_ONLY="rope,kvWrite,pagedDecode,bench copy,bench decode" node dist/gpu-tests.mjs "$OUT" /tmp/stratos-gpu 2>&1 | tail -40 > "$OUT/gpu-tests-regress-log.txt" || rc=1; cat "$OUT/gpu-tests-regress-log.txt" ;;
    data) node dist-prof/gemm-data.mjs "$OUT" 2>&1 | tee "$OUT/gemm-data-log.txt" || rc=1 ;;
    lora) node dist-prof/lora-steps.mjs "$OUT" 2>&1 | tee "$OUT/lora-steps-log.txt" || rc=1 ;;
    operands) node dist-prof/gemm-operands.mjs "$OUT" 2>&1 | tee "$OUT/gemm-operands-log.txt" || rc=1 ;;
    uneven) node dist-prof/decode-uneven.mjs "$OUT" 2>&1 | tee "$OUT/decode-uneven-log.txt" || rc=1 ;;
    footprint) node dist-prof/gemm-footprint.mjs "$OUT" 2>&1 | tee "$OUT/gemm-footprint-log.txt" || rc=1 ;;
  esac
  echo "$s done at ${SECONDS}s"
done
exit $rc
