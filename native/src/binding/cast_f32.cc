#include "binding.h"
#include "stratos/ops/cast_f32.h"

namespace stratos::binding {

template <typename Ptr>
static CastF32Params params(const Napi::Object& o, Ptr ptr) {
  CastF32Params p;
  p.dtype = get_dtype(o, "dtype");
  p.num_rows = get_i64(o, "numRows");
  p.cols = get_i64(o, "cols");
  p.src_rows = get_i64(o, "srcRows");
  p.scale = get_f32_or(o, "scale", 1.0f);
  p.x = ptr(o, "x", false);
  p.rows = static_cast<const int32_t*>(ptr(o, "rows", true));
  p.out = static_cast<float*>(ptr(o, "out", false));
  return p;
}

void export_cast_f32(Napi::Env, Napi::Object exports) {
  STRATOS_EXPORT(exports, "cpu_cast_f32", cast_f32_cpu(params(o, host_ptr)));
#if STRATOS_WITH_CUDA
  STRATOS_EXPORT(exports, "cuda_cast_f32", cast_f32_cuda(params(o, dev_ptr), stream_of(o)));
#endif
}

}  // namespace stratos::binding
