#!/usr/bin/env bash
# Run 5 in one device call when the device is contended: run5.sh (checks, TODO 1-2, 5, 9), then as
# many of run5-bench.sh's benches as fit before LIMIT seconds (TODO 10 first, then TODO 4).
# Everything goes to $OUT/run5.tgz (gpu-check/ and bench/).
set -o pipefail
OUT=${OUT:-$PWD/out}
LIMIT=${LIMIT:-330}
OUT=/tmp/stratos-run5-parts bash engine/runtime/gpu-check/run5.sh 2>&1 | tail -120
B=/tmp/stratos-run5/bench
mkdir -p "$B" "$OUT"
export STRATOS_NATIVE_PATH="$PWD/build-engine/stratos_native.node"
source .device/env.sh
bench() {
  local name=$1 need=$2; shift 2
  if (( SECONDS + need > LIMIT )); then echo "== $name skipped: ${SECONDS}s used, needs ~${need}s" | tee -a "$B/bench-log.txt"; return; fi
  echo "== $name: stratos engine bench --backend gpu $* --out $name" | tee -a "$B/bench-log.txt"
  timeout $need /usr/bin/time -f "%e s wall" node dist-engine5/stratos.mjs engine bench --backend gpu "$@" --out "$B/$name" 2>&1 | tail -25 | tee -a "$B/bench-log.txt"
}
M="--model llama2-13b --gpu h200 --seed 1"
TODO10="--rate 10 --duration 10 --input-tokens constant:512 --output-tokens uniform:100:500"
TODO4="--rate 8 --duration 5 --input-tokens constant:512 --output-tokens lognormal:847:0.5:1536"
bench todo10-optimized 60 $M $TODO10
bench todo10-baseline 90 $M $TODO10 --policy static --allocator contiguous --sampling cpu
bench todo4-paged 75 $M $TODO4
bench todo4-contiguous 90 $M $TODO4 --allocator contiguous
echo "all done at ${SECONDS}s" | tee -a "$B/bench-log.txt"
tar czf "$OUT/run5.tgz" -C /tmp/stratos-run5 .
