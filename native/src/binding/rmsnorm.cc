#include "binding.h"
#include "stratos/ops/rmsnorm.h"

namespace stratos::binding {

template <typename Ptr>
static RmsNormParams params(const Napi::Object& o, Ptr ptr) {
  RmsNormParams p;
  p.dtype = get_dtype(o, "dtype");
  p.num_tokens = get_i64(o, "numTokens");
  p.hidden = get_i64(o, "hidden");
  p.eps = get_f32(o, "eps");
  p.x = ptr(o, "x", false);
  p.residual = ptr(o, "residual", true);
  p.weight = ptr(o, "weight", false);
  p.out = ptr(o, "out", false);
  return p;
}

void export_rmsnorm(Napi::Env, Napi::Object exports) {
  STRATOS_EXPORT(exports, "cpu_rmsnorm", rmsnorm_cpu(params(o, host_ptr)));
#if STRATOS_WITH_CUDA
  STRATOS_EXPORT(exports, "cuda_rmsnorm", rmsnorm_cuda(params(o, dev_ptr), stream_of(o)));
#endif
}

}  // namespace stratos::binding
