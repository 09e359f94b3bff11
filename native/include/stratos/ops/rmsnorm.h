// RMSNorm, optionally fused with the residual add that precedes it in a transformer block:
//   residual = x + residual  (when residual is given; written back in place)
//   out = residual * rsqrt(mean(residual^2) + eps) * weight
#pragma once
#include <cstdint>
#include "stratos/dtype.h"

namespace stratos {

struct RmsNormParams {
  DType dtype = DType::BF16;  // of x, residual, weight, out
  int64_t num_tokens = 0, hidden = 0;
  float eps = 1e-6f;
  const void* x = nullptr;      // [numTokens, hidden]
  void* residual = nullptr;     // [numTokens, hidden] in/out, or null for a plain RMSNorm
  const void* weight = nullptr; // [hidden]
  void* out = nullptr;          // [numTokens, hidden]; may alias x
};

void rmsnorm_cpu(const RmsNormParams& p);
void rmsnorm_cuda(const RmsNormParams& p, void* stream);

}  // namespace stratos
