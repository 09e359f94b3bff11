// CPU reference: write K/V into the paged cache by slot mapping.
#include "stratos/error.h"
#include "stratos/ops/kv_write.h"

namespace stratos {

void kv_write_cpu(const KvWriteParams& p) {
  const bool fp8 = p.cache_dtype == DType::FP8E4M3;
  for (int64_t t = 0; t < p.num_tokens; ++t) {
    const int32_t slot = p.slot_mapping[t];
    if (slot < 0) continue;
    const int64_t page = slot / p.page_size, off = slot % p.page_size;
    STRATOS_CHECK(page < p.num_pages, "kv_write", "slot beyond the cache");
    for (int64_t h = 0; h < p.num_kv_heads; ++h) {
      const size_t src = static_cast<size_t>((t * p.num_kv_heads + h) * p.head_dim);
      const size_t dst = static_cast<size_t>(((page * p.num_kv_heads + h) * p.page_size + off) * p.head_dim);
      for (int64_t d = 0; d < p.head_dim; ++d) {
        float kv = load_f32(p.key, p.src_dtype, src + d);
        float vv = load_f32(p.value, p.src_dtype, src + d);
        if (fp8) { kv /= p.k_scale; vv /= p.v_scale; }
        store_f32(p.k_cache, p.cache_dtype, dst + d, kv);
        store_f32(p.v_cache, p.cache_dtype, dst + d, vv);
      }
    }
  }
}

}  // namespace stratos
