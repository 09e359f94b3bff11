// SiLU-and-mul, the gated MLP activation: out[t, i] = silu(x[t, i]) * x[t, d + i].
#pragma once
#include <cstdint>
#include "stratos/dtype.h"

namespace stratos {

struct SiluMulParams {
  DType dtype = DType::BF16;
  int64_t num_tokens = 0, d = 0;
  const void* x = nullptr;  // [numTokens, 2 * d]: gate then up
  void* out = nullptr;      // [numTokens, d]
};

void silu_mul_cpu(const SiluMulParams& p);
void silu_mul_cuda(const SiluMulParams& p, void* stream);

}  // namespace stratos
