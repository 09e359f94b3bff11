#!/usr/bin/env bash
# `stratos serve` on the GPU, measured from a client, against the in-process engine on the same workload
# (from the repository root; carry .device and dist-engine, built by `node engine/runtime/gpu-check/bundle.mjs`).
# What it shows: the serving path's cost (HTTP, SSE, the event loop between steps) as the ratio of TTFT / ITL /
# E2E over HTTP to those of `engine bench --backend gpu` on the identical workload, same card, same call.
# Writes $OUT/serve-http/{summary.json,requests.csv}, $OUT/in-process/{…,steps.csv}, $OUT/serve-log.txt.
set -o pipefail
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
# BACKEND=cpu MODEL=tiny RATE=10 DURATION=2 runs the same steps without a GPU (a check of this script).
BACKEND=${BACKEND:-gpu}
if [ "$BACKEND" = gpu ]; then
  source .device/env.sh
  bash native/device-build.sh build-engine >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
  export STRATOS_NATIVE_PATH="$PWD/build-engine/stratos_native.node"
  GRAPHS=--cuda-graphs
fi
MODEL=${MODEL:-llama2-7b}
WORKLOAD=(--rate "${RATE:-4}" --duration "${DURATION:-30}" --input-tokens uniform:128:1024 --output-tokens uniform:64:256 --seed 1)
node dist-engine/stratos.mjs serve --backend "$BACKEND" --model "$MODEL" $GRAPHS --port 8177 >"$OUT/serve-log.txt" 2>&1 &
server=$!
for i in $(seq 1 600); do grep -q "listening on" "$OUT/serve-log.txt" && break; kill -0 $server 2>/dev/null || break; sleep 1; done
grep -q "listening on" "$OUT/serve-log.txt" || { echo "serve did not start"; tail -20 "$OUT/serve-log.txt"; exit 1; }
node dist-engine/stratos.mjs engine bench --backend http --url http://127.0.0.1:8177 --model "$MODEL" "${WORKLOAD[@]}" --out "$OUT/serve-http" 2>&1 | tee -a "$OUT/bench-log.txt"
node -e "fetch('http://127.0.0.1:8177/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))" | grep -v '^#' | grep -v _bucket >>"$OUT/serve-log.txt"
kill -INT $server; wait $server
node dist-engine/stratos.mjs engine bench --backend "$BACKEND" --model "$MODEL" $GRAPHS "${WORKLOAD[@]}" --out "$OUT/in-process" 2>&1 | tee -a "$OUT/bench-log.txt"
