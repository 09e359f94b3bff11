// CPU reference: SiLU-and-mul.
#include "stratos/ops/silu_mul.h"

namespace stratos {

void silu_mul_cpu(const SiluMulParams& p) {
  for (int64_t t = 0; t < p.num_tokens; ++t) {
    for (int64_t i = 0; i < p.d; ++i) {
      const float g = load_f32(p.x, p.dtype, static_cast<size_t>(t * 2 * p.d + i));
      const float u = load_f32(p.x, p.dtype, static_cast<size_t>(t * 2 * p.d + p.d + i));
      store_f32(p.out, p.dtype, static_cast<size_t>(t * p.d + i), g / (1.0f + std::exp(-g)) * u);
    }
  }
}

}  // namespace stratos
