#include "binding.h"
#include "stratos/ops/gemm.h"

namespace stratos::binding {

template <typename Ptr>
static GemmParams params(const Napi::Object& o, Ptr ptr) {
  GemmParams p;
  p.ab_dtype = get_dtype(o, "dtype");
  p.c_dtype = get_dtype(o, "outDtype");
  p.m = get_i64(o, "m");
  p.n = get_i64(o, "n");
  p.k = get_i64(o, "k");
  p.alpha = get_f32(o, "alpha");
  p.a = ptr(o, "a", false);
  p.b = ptr(o, "b", false);
  p.c = ptr(o, "c", false);
  return p;
}

void export_gemm(Napi::Env, Napi::Object exports) {
  STRATOS_EXPORT(exports, "cpu_gemm", {
    GemmParams p = params(o, host_ptr);
    p.a_scale = get_f32_or(o, "aScale", 1.0f);
    p.b_scale = get_f32_or(o, "bScale", 1.0f);
    gemm_cpu(p);
  });
#if STRATOS_WITH_CUDA && STRATOS_WITH_CUBLAS
  STRATOS_EXPORT(exports, "cuda_gemm", {
    GemmParams p = params(o, dev_ptr);
    p.a_scale_dev = static_cast<const float*>(dev_ptr(o, "aScale", true));
    p.b_scale_dev = static_cast<const float*>(dev_ptr(o, "bScale", true));
    gemm_cuda(p, stream_of(o));
  });
#endif
}

}  // namespace stratos::binding
