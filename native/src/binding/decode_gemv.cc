#include "binding.h"
#include "stratos/ops/decode_gemv.h"

namespace stratos::binding {

template <typename Ptr>
static DecodeGemvParams params(const Napi::Object& o, Ptr ptr) {
  DecodeGemvParams p;
  p.dtype = get_dtype(o, "dtype");
  p.n = get_i64(o, "n");
  p.k = get_i64(o, "k");
  const int64_t e = get_i64(o, "epilogue");
  if (e < 0 || e > 2) fail(o.Env(), "argument 'epilogue' is not an epilogue code");
  p.epilogue = static_cast<GemvEpilogue>(e);
  p.eps = get_f32(o, "eps");
  p.x = ptr(o, "x", false);
  p.weight = ptr(o, "weight", false);
  p.norm_weight = ptr(o, "normWeight", true);
  p.out = ptr(o, "out", false);
  p.blocks_per_sm = static_cast<int>(get_i64_or(o, "blocksPerSm", 0));
  p.pdl = get_bool_or(o, "pdl", false);
  p.l2_prefetch = ptr(o, "l2Prefetch", true);
  p.l2_prefetch_bytes = p.l2_prefetch ? get_i64(o, "l2PrefetchBytes") : 0;
  return p;
}

void export_decode_gemv(Napi::Env, Napi::Object exports) {
  STRATOS_EXPORT(exports, "cpu_decode_gemv", decode_gemv_cpu(params(o, host_ptr)));
#if STRATOS_WITH_CUDA
  STRATOS_EXPORT(exports, "cuda_decode_gemv", decode_gemv_cuda(params(o, dev_ptr), stream_of(o)));
#endif
}

}  // namespace stratos::binding
