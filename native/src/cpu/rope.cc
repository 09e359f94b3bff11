// CPU reference: rotary embedding, in place.
#include "stratos/ops/kv_write.h"
#include "stratos/ops/rope.h"

namespace stratos {

static void rope_rows(void* x, DType dt, int64_t num_tokens, int64_t heads, const RopeParams& p) {
  const int64_t half = p.rot_dim / 2;
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float pos = static_cast<float>(p.positions[t]);
    for (int64_t h = 0; h < heads; ++h) {
      const size_t base = static_cast<size_t>((t * heads + h) * p.head_dim);
      for (int64_t i = 0; i < half; ++i) {
        const float inv_freq = std::pow(p.theta, -2.0f * static_cast<float>(i) / static_cast<float>(p.rot_dim));
        const float angle = pos * inv_freq;
        const float c = std::cos(angle), s = std::sin(angle);
        const size_t i0 = base + (p.neox ? i : 2 * i);
        const size_t i1 = base + (p.neox ? i + half : 2 * i + 1);
        const float x0 = load_f32(x, dt, i0), x1 = load_f32(x, dt, i1);
        store_f32(x, dt, i0, x0 * c - x1 * s);
        store_f32(x, dt, i1, x1 * c + x0 * s);
      }
    }
  }
}

void rope_cpu(const RopeParams& p) {
  rope_rows(p.q, p.dtype, p.num_tokens, p.num_heads, p);
  rope_rows(p.k, p.dtype, p.num_tokens, p.num_kv_heads, p);
  if (p.k_cache) {
    KvWriteParams kv;
    kv.src_dtype = kv.cache_dtype = p.dtype;
    kv.num_tokens = p.num_tokens;
    kv.num_kv_heads = p.num_kv_heads;
    kv.head_dim = p.head_dim;
    kv.page_size = p.page_size;
    kv.num_pages = p.num_pages;
    kv.key = p.k;
    kv.value = p.value;
    kv.slot_mapping = p.slot_mapping;
    kv.k_cache = p.k_cache;
    kv.v_cache = p.v_cache;
    kv_write_cpu(kv);
  }
}

}  // namespace stratos
