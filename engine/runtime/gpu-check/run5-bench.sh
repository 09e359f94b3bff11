#!/usr/bin/env bash
# Run 5, part 2: `stratos engine bench --backend gpu` on the 13B shape for the notebook's TODO 4
# (paged vs contiguous KV at log-normal output lengths, median 847) and TODO 10 (the case study's
# baseline stack vs the optimized one, Poisson lambda = 10, 100-500 output tokens). Carry .device and
# dist-engine5; the addon is (re)built into build-engine. Everything goes to $OUT/run5-bench.tgz.
set -o pipefail
OUT=${OUT:-$PWD/out}
R=/tmp/stratos-run5-bench
mkdir -p "$OUT" "$R"
source .device/env.sh
bash native/device-build.sh build-engine >"$R/build.txt" 2>&1 || { tail -40 "$R/build.txt"; exit 1; }
export STRATOS_NATIVE_PATH="$PWD/build-engine/stratos_native.node"
bench() {
  local name=$1; shift
  echo "== $name: stratos engine bench --backend gpu $* --out $name" | tee -a "$R/bench-log.txt"
  timeout 150 /usr/bin/time -f "%e s wall" node dist-engine5/stratos.mjs engine bench --backend gpu "$@" --out "$R/$name" 2>&1 | tee -a "$R/bench-log.txt"
}
M="--model llama2-13b --gpu h200 --seed 1"
TODO4="--rate 8 --duration 5 --input-tokens constant:512 --output-tokens lognormal:847:0.5:1536"
TODO10="--rate 10 --duration 15 --input-tokens constant:512 --output-tokens uniform:100:500"
bench todo4-paged $M $TODO4
bench todo4-contiguous $M $TODO4 --allocator contiguous
bench todo10-optimized $M $TODO10
bench todo10-baseline $M $TODO10 --policy static --allocator contiguous --sampling cpu
echo "all done at ${SECONDS}s" | tee -a "$R/bench-log.txt"
tar czf "$OUT/run5-bench.tgz" -C "$R" .
