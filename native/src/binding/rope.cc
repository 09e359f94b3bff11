#include "binding.h"
#include "stratos/ops/rope.h"

namespace stratos::binding {

template <typename Ptr>
static RopeParams params(const Napi::Object& o, Ptr ptr) {
  RopeParams p;
  p.dtype = get_dtype(o, "dtype");
  p.num_tokens = get_i64(o, "numTokens");
  p.num_heads = get_i64(o, "numHeads");
  p.num_kv_heads = get_i64(o, "numKvHeads");
  p.head_dim = get_i64(o, "headDim");
  p.rot_dim = get_i64(o, "rotDim");
  p.theta = get_f32(o, "theta");
  p.neox = get_bool(o, "neox");
  p.positions = static_cast<const int32_t*>(ptr(o, "positions", false));
  p.q = ptr(o, "q", false);
  p.k = ptr(o, "k", false);
  p.k_cache = ptr(o, "kCache", true);
  if (p.k_cache) {
    p.value = ptr(o, "value", false);
    p.slot_mapping = static_cast<const int32_t*>(ptr(o, "slotMapping", false));
    p.v_cache = ptr(o, "vCache", false);
    p.page_size = get_i64(o, "pageSize");
    p.num_pages = get_i64(o, "numPages");
  }
  p.pdl = get_bool_or(o, "pdl", false);
  return p;
}

void export_rope(Napi::Env, Napi::Object exports) {
  STRATOS_EXPORT(exports, "cpu_rope", rope_cpu(params(o, host_ptr)));
#if STRATOS_WITH_CUDA
  STRATOS_EXPORT(exports, "cuda_rope", rope_cuda(params(o, dev_ptr), stream_of(o)));
#endif
}

}  // namespace stratos::binding
