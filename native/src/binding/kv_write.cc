#include "binding.h"
#include "stratos/ops/kv_write.h"

namespace stratos::binding {

template <typename Ptr>
static KvWriteParams params(const Napi::Object& o, Ptr ptr) {
  KvWriteParams p;
  p.src_dtype = get_dtype(o, "dtype");
  p.cache_dtype = get_dtype(o, "cacheDtype");
  p.num_tokens = get_i64(o, "numTokens");
  p.num_kv_heads = get_i64(o, "numKvHeads");
  p.head_dim = get_i64(o, "headDim");
  p.page_size = get_i64(o, "pageSize");
  p.num_pages = get_i64(o, "numPages");
  p.k_scale = get_f32(o, "kScale");
  p.v_scale = get_f32(o, "vScale");
  p.key = ptr(o, "key", false);
  p.value = ptr(o, "value", false);
  p.slot_mapping = static_cast<const int32_t*>(ptr(o, "slotMapping", false));
  p.k_cache = ptr(o, "kCache", false);
  p.v_cache = ptr(o, "vCache", false);
  p.pdl = get_bool_or(o, "pdl", false);
  return p;
}

void export_kv_write(Napi::Env, Napi::Object exports) {
  STRATOS_EXPORT(exports, "cpu_kv_write", kv_write_cpu(params(o, host_ptr)));
#if STRATOS_WITH_CUDA
  STRATOS_EXPORT(exports, "cuda_kv_write", kv_write_cuda(params(o, dev_ptr), stream_of(o)));
#endif
}

}  // namespace stratos::binding
