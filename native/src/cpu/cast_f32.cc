// CPU reference: widening cast to f32 with an optional row gather and scale.
#include <cmath>
#include "stratos/ops/cast_f32.h"

namespace stratos {

void cast_f32_cpu(const CastF32Params& p) {
  for (int64_t r = 0; r < p.num_rows; ++r) {
    const int64_t src = p.rows ? p.rows[r] : r;
    float* o = p.out + r * p.cols;
    if (src < 0 || src >= p.src_rows) {
      for (int64_t c = 0; c < p.cols; ++c) o[c] = std::nanf("");
      continue;
    }
    for (int64_t c = 0; c < p.cols; ++c) o[c] = load_f32(p.x, p.dtype, static_cast<size_t>(src * p.cols + c)) * p.scale;
  }
}

}  // namespace stratos
