#!/usr/bin/env bash
# The one recipe for building the addon on the GPU machine (sm_90a: the Hopper wgmma prefill kernel;
# cuBLAS/cuBLASLt for GEMM). Usage, from the repository root after `source .device/env.sh`:
#   bash native/device-build.sh BUILD_DIR [ON|OFF (cuBLAS, default ON)] >> build.log 2>&1
# Incremental: an existing BUILD_DIR is rebuilt only where sources changed.
set -o pipefail
dir=${1:?usage: native/device-build.sh BUILD_DIR [ON|OFF]}
cmake -S native -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWITH_CUDA=ON -DWITH_CUBLAS="${2:-ON}" \
  -DCMAKE_CUDA_ARCHITECTURES=90a -DCMAKE_JS_INC="$NAPI_INC" -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$PWD/$dir" &&
  cmake --build "$dir" -j 16
