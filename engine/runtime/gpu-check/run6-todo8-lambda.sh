#!/usr/bin/env bash
# TODO 8 on the 13B shape with chunked prefill: the chunk budgets and arrival rates the calibrated
# simulator picked (experiments/validate terms), run on the real engine to find the highest lambda
# that meets p99 TTFT <= 400 ms and p99 ITL <= 35 ms. From the repository root on the GPU machine,
# carrying .device and dist-validate (node experiments/validate/bundle.mjs). Outputs under $OUT.
set -o pipefail
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
source .device/env.sh
bash native/device-build.sh build-validate >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
export STRATOS_NATIVE_PATH="$PWD/build-validate/stratos_native.node"
for spec in ${SPECS:-256:10 256:11 256:12 384:10 384:11}; do
  budget=${spec%%:*}; rate=${spec##*:}
  name="todo8-13b-chunked${budget}-rate${rate}"
  echo "== $name: stratos engine bench --backend gpu --model llama2-13b --gpu h200 --policy chunked --max-num-batched-tokens $budget --rate $rate --duration 21 --input-tokens constant:512 --output-tokens uniform:100:500 --seed 1" | tee -a "$OUT/bench-log.txt"
  node dist-validate/stratos.mjs engine bench --backend gpu --model llama2-13b --gpu h200 --policy chunked --max-num-batched-tokens "$budget" \
    --rate "$rate" --duration 21 --input-tokens constant:512 --output-tokens uniform:100:500 --seed 1 --out "$OUT/$name" 2>&1 | grep -E "requests|TTFT|ITL|throughput \(output" | tee -a "$OUT/bench-log.txt"
done
