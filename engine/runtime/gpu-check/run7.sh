#!/usr/bin/env bash
# CUDA graphs for decode steps on the H200 (issue 6), from the repository root with .device and
# dist-graph carried:
#   node engine/runtime/gpu-check/bundle7.mjs       (here, before the device call)
#   bash engine/runtime/gpu-check/run7.sh           (on the device)
# Builds the addon into build-graph, runs dist-graph/run7.mjs (tiny: graph vs eager tokens; 7b:
# roofline, batch 1/8/64 eager vs graphs, fused q/k/v), then the tiny comparison with transformers
# (eager path, after this change to the decode split rule), and TODO 9 (dist-graph/gpu-check5.mjs,
# bundled from run5.ts; run7/ measured it with rows grouped by adapter, since reverted). Results go to $OUT.
set -o pipefail
OUT=${OUT:-$PWD/out}
WORK=/tmp/stratos-graph
mkdir -p "$OUT" "$WORK"
source .device/env.sh
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$OUT/build.log" 2>&1
bash native/device-build.sh build-graph >>"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
echo "build done at ${SECONDS}s"
export STRATOS_NATIVE_PATH="$PWD/build-graph/stratos_native.node"
node dist-graph/run7.mjs "$OUT" tiny 2>&1 | tee "$OUT/engine-log.txt"
echo "tiny done at ${SECONDS}s"
node dist-graph/run7.mjs "$OUT" 7b 2>&1 | tee -a "$OUT/engine-log.txt"
echo "7b done at ${SECONDS}s"
# TODO 9 (13B, 3 LoRA tenants vs base), as run5's rerun ran it.
if [ "${SKIP_TODO9:-0}" != 1 ]; then
  STRATOS_RUN5_ONLY=todo9 node dist-graph/gpu-check5.mjs "$OUT" /tmp/stratos-w5 13b 2>&1 | tee -a "$OUT/engine-log.txt"
  echo "todo9 done at ${SECONDS}s"
fi
if [ "${SKIP_HF:-0}" != 1 ]; then
  node dist-graph/gpu-check.mjs "$OUT" "$WORK" tiny 2>&1 | tee -a "$OUT/engine-log.txt"
  python3 engine/runtime/gpu-check/hf_reference.py "$WORK" "$OUT" tiny 2>&1 | tail -20 | tee "$OUT/hf-log.txt"
fi
echo "all done at ${SECONDS}s"
