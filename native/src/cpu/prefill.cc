// CPU reference: causal prefill / chunked-prefill attention reading K/V from the paged cache.
#include <vector>
#include "stratos/error.h"
#include "stratos/ops/prefill.h"

namespace stratos {

void prefill_cpu(const PrefillParams& p) {
  const int64_t group = p.num_heads / p.num_kv_heads;
  const int64_t D = p.head_dim;
  std::vector<double> scores, acc(static_cast<size_t>(D));
  std::vector<float> k, v;  // one (sequence, kv head) gathered out of the pages: [kvLen, D]
  for (int64_t s = 0; s < p.num_seqs; ++s) {
    const int64_t q0 = p.cu_seqlens_q[s], q1 = p.cu_seqlens_q[s + 1];
    const int64_t qlen = q1 - q0, kvlen = p.seq_lens_kv[s], ctx = kvlen - qlen;
    STRATOS_CHECK(qlen >= 0 && ctx >= 0, "prefill", "need 0 <= qLen <= seqLenKv");
    STRATOS_CHECK(kvlen <= p.max_pages_per_seq * p.page_size, "prefill", "seq len beyond block table");
    k.resize(static_cast<size_t>(kvlen * D));
    v.resize(static_cast<size_t>(kvlen * D));
    scores.resize(static_cast<size_t>(kvlen));
    for (int64_t kvh = 0; kvh < p.num_kv_heads; ++kvh) {
      for (int64_t t = 0; t < kvlen; ++t) {
        const int32_t page = p.block_tables[s * p.max_pages_per_seq + t / p.page_size];
        STRATOS_CHECK(page >= 0 && page < p.num_pages, "prefill", "page id out of range");
        const size_t b = static_cast<size_t>(((page * p.num_kv_heads + kvh) * p.page_size + t % p.page_size) * D);
        for (int64_t d = 0; d < D; ++d) {
          k[t * D + d] = load_f32(p.k_cache, p.dtype, b + d);
          v[t * D + d] = load_f32(p.v_cache, p.dtype, b + d);
        }
      }
      for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
        for (int64_t i = 0; i < qlen; ++i) {
          const size_t qb = static_cast<size_t>(((q0 + i) * p.num_heads + h) * D);
          const int64_t last = ctx + i;  // attends to [0, last]
          double mx = -INFINITY;
          for (int64_t t = 0; t <= last; ++t) {
            double dot = 0.0;
            for (int64_t d = 0; d < D; ++d) dot += static_cast<double>(load_f32(p.q, p.dtype, qb + d)) * k[t * D + d];
            scores[t] = dot * p.scale;
            if (scores[t] > mx) mx = scores[t];
          }
          double denom = 0.0;
          std::fill(acc.begin(), acc.end(), 0.0);
          for (int64_t t = 0; t <= last; ++t) {
            const double e = std::exp(scores[t] - mx);
            denom += e;
            for (int64_t d = 0; d < D; ++d) acc[d] += e * v[t * D + d];
          }
          for (int64_t d = 0; d < D; ++d) store_f32(p.out, p.dtype, qb + d, static_cast<float>(acc[d] / denom));
        }
      }
    }
  }
}

}  // namespace stratos
