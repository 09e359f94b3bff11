#!/usr/bin/env bash
# After an H200 device call of engine/runtime/gpu-check/h200-plan.sh, here (no GPU): the H200 profile's 12 lora
# tables refitted from that call's lora samples (the current multi-LoRA kernels), its power section re-applied,
# and the A100 profile derived again from it. Everything else in the profile stays as measured on 2026-11-22.
#   bash calibration/runs/refit-h200-lora.sh LORA_SAMPLES [RUN_DIR]
# LORA_SAMPLES: calib/lora-samples.csv (or .csv.gz) from the call; RUN_DIR (default calibration/runs/DATE-h200-lora)
# gets the samples, the merged file and a log. PROFILES_DIR (default calibration/profiles) is where the H200 and
# A100 profiles are written (a scratch folder tries the steps without touching the committed profiles).
set -euo pipefail
samples=${1:?usage: refit-h200-lora.sh LORA_SAMPLES [RUN_DIR]}
day=$(date -u +%F)
run=${2:-calibration/runs/$day-h200-lora}
profiles=${PROFILES_DIR:-calibration/profiles}
stratos="node bin/stratos.mjs"
mkdir -p "$run" "$profiles"
case "$samples" in
  *.gz) cp "$samples" "$run/lora-samples.csv.gz" ;;
  *) gzip -c "$samples" > "$run/lora-samples.csv.gz" ;;
esac
{
  $stratos calibrate merge calibration/runs/2026-11-22-lora/samples.csv.gz "$run/lora-samples.csv.gz" --out "$run/samples.csv.gz"
  $stratos calibrate fit "$run/samples.csv.gz" --out "$profiles/h200.json" --name "h200-2026-11-22+lora-$day"
  $stratos calibrate power calibration/runs/2026-12-07-power-h200/power-bench.json --profile "$profiles/h200.json"
  $stratos calibrate derive "$profiles/h200.json" --gpu a100-80gb --out "$profiles/a100-80gb.json"
} 2>&1 | tee "$run/refit-log.txt"
echo "refit: $profiles/h200.json and $profiles/a100-80gb.json; next: stratos validate --from-logs (after lora-mix-7b's new logs) and npm start's results"
