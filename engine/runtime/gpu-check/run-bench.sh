#!/usr/bin/env bash
# `stratos engine bench --backend gpu` on the H200 (from the repository root; carry .device and
# dist-engine, built by `node engine/runtime/gpu-check/bundle.mjs`). Writes each run's
# summary.json, requests.csv and steps.csv under $OUT.
set -o pipefail
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
source .device/env.sh
bash native/device-build.sh build-engine >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
export STRATOS_NATIVE_PATH="$PWD/build-engine/stratos_native.node"
bench() {
  local name=$1; shift
  echo "== $name: stratos engine bench $*" | tee -a "$OUT/bench-log.txt"
  /usr/bin/time -f "%e s wall" node dist-engine/stratos.mjs engine bench --backend gpu "$@" --out "$OUT/$name" 2>&1 | tee -a "$OUT/bench-log.txt"
}
case "${1:-all}" in
  all)
    bench tiny-gpu --model tiny --rate 20 --duration 3 --input-tokens uniform:16:256 --output-tokens uniform:16:128 --seed 1
    bench llama2-13b-todo8 --model llama2-13b --gpu h200 --rate 10 --duration 21 --input-tokens constant:512 --output-tokens uniform:100:500 --seed 1
    ;;
  chunked)
    bench llama2-13b-todo8-chunked --model llama2-13b --gpu h200 --policy chunked --max-num-batched-tokens 512 --rate 10 --duration 21 --input-tokens constant:512 --output-tokens uniform:100:500 --seed 1
    ;;
esac
