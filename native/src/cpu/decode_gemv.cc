// CPU reference: the one-row fused linear layer (f32 arithmetic, rounding where the unfused ops store).
#include <cmath>
#include <vector>
#include "stratos/ops/decode_gemv.h"

namespace stratos {

// v as the GPU stores it in a `t` buffer (f32, bf16 or f16) and reads it back.
static float rounded(DType t, float v) {
  if (t == DType::F32) return v;
  uint32_t bits = 0;  // wide enough for any dtype store_f32 writes
  store_f32(&bits, t, 0, v);
  return load_f32(&bits, t, 0);
}

void decode_gemv_cpu(const DecodeGemvParams& p) {
  const size_t k = static_cast<size_t>(p.k);
  std::vector<float> x(k);
  for (size_t i = 0; i < k; ++i) x[i] = load_f32(p.x, p.dtype, i);
  if (p.norm_weight) {
    double sum_sq = 0.0;
    for (size_t i = 0; i < k; ++i) sum_sq += static_cast<double>(x[i]) * x[i];
    const float inv_rms = 1.0f / std::sqrt(static_cast<float>(sum_sq / p.k) + p.eps);
    for (size_t i = 0; i < k; ++i) x[i] = rounded(p.dtype, x[i] * inv_rms * load_f32(p.norm_weight, p.dtype, i));
  }
  const auto dot = [&](int64_t row) {
    float acc = 0.0f;
    const size_t base = static_cast<size_t>(row) * k;
    for (size_t i = 0; i < k; ++i) acc += load_f32(p.weight, p.dtype, base + i) * x[i];
    return rounded(p.dtype, acc);
  };
  for (int64_t j = 0; j < p.n; ++j) {
    const size_t o = static_cast<size_t>(j);
    switch (p.epilogue) {
      case GemvEpilogue::kStore: store_f32(p.out, p.dtype, o, dot(j)); break;
      case GemvEpilogue::kAdd: store_f32(p.out, p.dtype, o, load_f32(p.out, p.dtype, o) + dot(j)); break;
      case GemvEpilogue::kSiluPair: {
        const float g = dot(j), u = dot(p.n + j);
        store_f32(p.out, p.dtype, o, g / (1.0f + std::exp(-g)) * u);
        break;
      }
    }
  }
}

}  // namespace stratos
