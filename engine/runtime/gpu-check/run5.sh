#!/usr/bin/env bash
# Run 5, part 1, on the H200 from the repository root (carry .device and dist-engine5, built here by
# `node engine/runtime/gpu-check/bundle5.mjs`): builds the addon into build-engine, then
#   tiny and 7b shape: each baseline's greedy tokens vs the optimized path; a PEFT LoRA adapter's
#   logits vs transformers + peft (unmerged and merged); 13b shape: TODO 1-2, 5 and 9.
# Everything goes to $OUT/run5.tgz (gpu-check/: JSON and logs).
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-$PWD/out}
R=/tmp/stratos-run5/gpu-check
WORK=/tmp/stratos-engine5
mkdir -p "$OUT" "$R" "$WORK"
source .device/env.sh
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,memory.total --format=csv > "$R/build.txt" 2>&1
bash native/device-build.sh build-engine >>"$R/build.txt" 2>&1 || { tail -40 "$R/build.txt"; tar czf "$OUT/run5.tgz" -C /tmp/stratos-run5 .; exit 1; }
echo "build done at ${SECONDS}s" | tee "$R/engine-log.txt"
export STRATOS_NATIVE_PATH="$PWD/build-engine/stratos_native.node"
HF=engine/runtime/gpu-check/hf_reference.py
timeout 120 node dist-engine5/gpu-check5.mjs "$R" "$WORK" tiny 2>&1 | tee -a "$R/engine-log.txt"
timeout 90 python3 $HF "$WORK" "$R" lora-tiny 2>&1 | grep -v Warning | tail -30 | tee "$R/hf-log.txt"
echo "tiny done at ${SECONDS}s" | tee -a "$R/engine-log.txt"
timeout 120 node dist-engine5/gpu-check5.mjs "$R" "$WORK" 7b 2>&1 | tee -a "$R/engine-log.txt"
timeout 120 python3 $HF "$WORK" "$R" lora-7b 2>&1 | grep -v Warning | tail -30 | tee -a "$R/hf-log.txt"
echo "7b done at ${SECONDS}s" | tee -a "$R/engine-log.txt"
timeout 200 node dist-engine5/gpu-check5.mjs "$R" "$WORK" 13b 2>&1 | tee -a "$R/engine-log.txt"
echo "all done at ${SECONDS}s" | tee -a "$R/engine-log.txt"
tar czf "$OUT/run5.tgz" -C /tmp/stratos-run5 .
