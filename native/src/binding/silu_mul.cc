#include "binding.h"
#include "stratos/ops/silu_mul.h"

namespace stratos::binding {

template <typename Ptr>
static SiluMulParams params(const Napi::Object& o, Ptr ptr) {
  SiluMulParams p;
  p.dtype = get_dtype(o, "dtype");
  p.num_tokens = get_i64(o, "numTokens");
  p.d = get_i64(o, "d");
  p.x = ptr(o, "x", false);
  p.out = ptr(o, "out", false);
  return p;
}

void export_silu_mul(Napi::Env, Napi::Object exports) {
  STRATOS_EXPORT(exports, "cpu_silu_mul", silu_mul_cpu(params(o, host_ptr)));
#if STRATOS_WITH_CUDA
  STRATOS_EXPORT(exports, "cuda_silu_mul", silu_mul_cuda(params(o, dev_ptr), stream_of(o)));
#endif
}

}  // namespace stratos::binding
