// CPU reference: paged decode attention (one pass, exact softmax in f32/f64).
#include <cstring>
#include <vector>
#include "stratos/error.h"
#include "stratos/ops/paged_decode.h"
#include "stratos/ops/rope.h"

namespace stratos {

void paged_decode_cpu(const PagedDecodeParams& p) {
  if (p.k_new) {
    // The fused form: rope (writing the cache) on copies of q and k_new, then attention over them.
    STRATOS_CHECK(p.kv_dtype == p.q_dtype, "paged_decode", "the fused rope needs a cache of q's dtype");
    const size_t elem = dtype_bytes(p.q_dtype);
    std::vector<uint8_t> q(static_cast<size_t>(p.num_seqs * p.num_heads * p.head_dim) * elem);
    std::vector<uint8_t> k(static_cast<size_t>(p.num_seqs * p.num_kv_heads * p.head_dim) * elem);
    std::memcpy(q.data(), p.q, q.size());
    std::memcpy(k.data(), p.k_new, k.size());
    std::vector<int32_t> positions(static_cast<size_t>(p.num_seqs)), slots(static_cast<size_t>(p.num_seqs));
    for (int64_t s = 0; s < p.num_seqs; ++s) {
      const int32_t t = p.seq_lens[s] - 1;
      positions[s] = t < 0 ? 0 : t;
      slots[s] = t < 0 ? -1 : p.block_tables[s * p.max_pages_per_seq + t / p.page_size] * static_cast<int32_t>(p.page_size) + t % static_cast<int32_t>(p.page_size);
    }
    RopeParams r;
    r.dtype = p.q_dtype;
    r.num_tokens = p.num_seqs;
    r.num_heads = p.num_heads;
    r.num_kv_heads = p.num_kv_heads;
    r.head_dim = r.rot_dim = p.head_dim;
    r.theta = p.rope_theta;
    r.neox = true;
    r.positions = positions.data();
    r.q = q.data();
    r.k = k.data();
    r.value = p.v_new;
    r.slot_mapping = slots.data();
    r.k_cache = const_cast<void*>(p.k_cache);
    r.v_cache = const_cast<void*>(p.v_cache);
    r.page_size = p.page_size;
    r.num_pages = p.num_pages;
    rope_cpu(r);
    PagedDecodeParams plain = p;
    plain.k_new = plain.v_new = nullptr;
    plain.q = q.data();
    paged_decode_cpu(plain);
    return;
  }
  const int64_t group = p.num_heads / p.num_kv_heads;
  const bool fp8 = p.kv_dtype == DType::FP8E4M3;
  const float ks = fp8 ? p.k_scale : 1.0f, vs = fp8 ? p.v_scale : 1.0f;
  std::vector<double> scores, acc(static_cast<size_t>(p.head_dim));
  for (int64_t s = 0; s < p.num_seqs; ++s) {
    const int64_t len = p.seq_lens[s];
    STRATOS_CHECK(len >= 0 && len <= p.max_pages_per_seq * p.page_size, "paged_decode", "seq len beyond block table");
    scores.assign(static_cast<size_t>(len), 0.0);
    for (int64_t h = 0; h < p.num_heads; ++h) {
      const int64_t kvh = h / group;
      const size_t qbase = static_cast<size_t>((s * p.num_heads + h) * p.head_dim);
      double mx = -INFINITY;
      for (int64_t t = 0; t < len; ++t) {
        const int32_t page = p.block_tables[s * p.max_pages_per_seq + t / p.page_size];
        STRATOS_CHECK(page >= 0 && page < p.num_pages, "paged_decode", "page id out of range");
        const size_t kb = static_cast<size_t>(((page * p.num_kv_heads + kvh) * p.page_size + t % p.page_size) * p.head_dim);
        double dot = 0.0;
        for (int64_t d = 0; d < p.head_dim; ++d)
          dot += static_cast<double>(load_f32(p.q, p.q_dtype, qbase + d)) * load_f32(p.k_cache, p.kv_dtype, kb + d) * ks;
        scores[t] = dot * p.scale;
        if (scores[t] > mx) mx = scores[t];
      }
      double denom = 0.0;
      for (int64_t t = 0; t < len; ++t) { scores[t] = std::exp(scores[t] - mx); denom += scores[t]; }
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t t = 0; t < len; ++t) {
        const int32_t page = p.block_tables[s * p.max_pages_per_seq + t / p.page_size];
        const size_t vb = static_cast<size_t>(((page * p.num_kv_heads + kvh) * p.page_size + t % p.page_size) * p.head_dim);
        for (int64_t d = 0; d < p.head_dim; ++d) acc[d] += scores[t] * load_f32(p.v_cache, p.kv_dtype, vb + d) * vs;
      }
      for (int64_t d = 0; d < p.head_dim; ++d)
        store_f32(p.out, p.q_dtype, qbase + d, len > 0 ? static_cast<float>(acc[d] / denom) : 0.0f);
    }
  }
}

}  // namespace stratos
