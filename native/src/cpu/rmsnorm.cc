// CPU reference: RMSNorm fused with the residual add (f32 arithmetic, rounding where the GPU stores).
#include <vector>
#include "stratos/ops/rmsnorm.h"

namespace stratos {

void rmsnorm_cpu(const RmsNormParams& p) {
  std::vector<float> h(static_cast<size_t>(p.hidden));
  for (int64_t t = 0; t < p.num_tokens; ++t) {
    const size_t base = static_cast<size_t>(t * p.hidden);
    double sum_sq = 0.0;
    for (int64_t i = 0; i < p.hidden; ++i) {
      float v = load_f32(p.x, p.dtype, base + i);
      if (p.residual) {
        v += load_f32(p.residual, p.dtype, base + i);
        store_f32(p.residual, p.dtype, base + i, v);
        v = load_f32(p.residual, p.dtype, base + i);  // normalize what was stored, as the GPU does
      }
      h[i] = v;
      sum_sq += static_cast<double>(v) * v;
    }
    const float inv_rms = 1.0f / std::sqrt(static_cast<float>(sum_sq / p.hidden) + p.eps);
    for (int64_t i = 0; i < p.hidden; ++i) {
      store_f32(p.out, p.dtype, base + i, h[i] * inv_rms * load_f32(p.weight, p.dtype, i));
    }
  }
}

}  // namespace stratos
