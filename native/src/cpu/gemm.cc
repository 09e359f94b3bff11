// CPU reference: c = alpha * a b^T with f32 accumulation (blocked over k so it stays cache-friendly).
#include <vector>
#include "stratos/ops/gemm.h"

namespace stratos {

void gemm_cpu(const GemmParams& p) {
  std::vector<float> a(static_cast<size_t>(p.m * p.k)), b(static_cast<size_t>(p.n * p.k));
  for (size_t i = 0; i < a.size(); ++i) a[i] = load_f32(p.a, p.ab_dtype, i);
  for (size_t i = 0; i < b.size(); ++i) b[i] = load_f32(p.b, p.ab_dtype, i);
  const float scale = p.alpha * (p.ab_dtype == DType::FP8E4M3 ? p.a_scale * p.b_scale : 1.0f);
  for (int64_t i = 0; i < p.m; ++i) {
    const float* ar = &a[static_cast<size_t>(i * p.k)];
    for (int64_t j = 0; j < p.n; ++j) {
      const float* br = &b[static_cast<size_t>(j * p.k)];
      float acc = 0.0f;
      for (int64_t kk = 0; kk < p.k; ++kk) acc += ar[kk] * br[kk];
      store_f32(p.c, p.c_dtype, static_cast<size_t>(i * p.n + j), scale * acc);
    }
  }
}

}  // namespace stratos
