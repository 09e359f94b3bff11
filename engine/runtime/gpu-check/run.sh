#!/usr/bin/env bash
# The engine's GPU check, run on the H200 from the repository root with .device and dist-engine carried:
#   node engine/runtime/gpu-check/bundle.mjs            (here, before the device call)
#   bash engine/runtime/gpu-check/run.sh                (on the device)
# Builds the addon into build-engine, writes our logits, compares them with transformers (tiny and
# the Llama-2-7B shape) and measures decode latency and offline throughput. Results go to $OUT.
set -o pipefail
OUT=${OUT:-$PWD/out}
WORK=/tmp/stratos-engine
mkdir -p "$OUT" "$WORK"
source .device/env.sh
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$OUT/build.log" 2>&1
bash native/device-build.sh build-engine >>"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
echo "build done at ${SECONDS}s"
export STRATOS_NATIVE_PATH="$PWD/build-engine/stratos_native.node"
node dist-engine/gpu-check.mjs "$OUT" "$WORK" tiny 2>&1 | tee "$OUT/engine-log.txt"
python3 engine/runtime/gpu-check/hf_reference.py "$WORK" "$OUT" tiny 2>&1 | tail -20 | tee "$OUT/hf-log.txt"
echo "tiny done at ${SECONDS}s"
node dist-engine/gpu-check.mjs "$OUT" "$WORK" 7b 2>&1 | tee -a "$OUT/engine-log.txt"
python3 engine/runtime/gpu-check/hf_reference.py "$WORK" "$OUT" 7b 2>&1 | tail -20 | tee -a "$OUT/hf-log.txt"
echo "all done at ${SECONDS}s"
