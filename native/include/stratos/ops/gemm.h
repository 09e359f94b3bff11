// GEMM in the layout of a linear layer: c[m, n] = alpha * sum_k a[m, k] * b[n, k] (y = x W^T).
// The GPU path is cuBLASLt (gemm_cublas.cu, built only where cuBLAS is installed): bf16 or f16 in
// and out with f32 accumulation, or fp8 e4m3 in with per-tensor scales and bf16 out.
#pragma once
#include <cstdint>
#include "stratos/dtype.h"

namespace stratos {

struct GemmParams {
  DType ab_dtype = DType::BF16;  // f32/bf16/f16 on the CPU; bf16, f16 or fp8e4m3 on the GPU
  DType c_dtype = DType::BF16;
  int64_t m = 0, n = 0, k = 0;
  float alpha = 1.0f;
  const void* a = nullptr;  // [m, k]
  const void* b = nullptr;  // [n, k]
  void* c = nullptr;        // [m, n]
  // fp8 only: c = alpha * a_scale * b_scale * (a b^T). CPU: values; GPU: device pointers to one f32.
  float a_scale = 1.0f, b_scale = 1.0f;
  const float* a_scale_dev = nullptr;
  const float* b_scale_dev = nullptr;
};

void gemm_cpu(const GemmParams& p);
bool gemm_cuda_available();  // false where the addon was built without cuBLAS
void gemm_cuda(const GemmParams& p, void* stream);

}  // namespace stratos
