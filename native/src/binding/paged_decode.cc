#include "binding.h"
#include "stratos/ops/paged_decode.h"

namespace stratos::binding {

template <typename Ptr>
static PagedDecodeParams params(const Napi::Object& o, Ptr ptr) {
  PagedDecodeParams p;
  p.q_dtype = get_dtype(o, "dtype");
  p.kv_dtype = get_dtype(o, "kvDtype");
  p.num_seqs = get_i64(o, "numSeqs");
  p.num_heads = get_i64(o, "numHeads");
  p.num_kv_heads = get_i64(o, "numKvHeads");
  p.head_dim = get_i64(o, "headDim");
  p.page_size = get_i64(o, "pageSize");
  p.num_pages = get_i64(o, "numPages");
  p.max_pages_per_seq = get_i64(o, "maxPagesPerSeq");
  p.max_seq_len = get_i64(o, "maxSeqLen");
  p.partition_tokens = get_i64_or(o, "partitionTokens", 0);
  p.scale = get_f32(o, "scale");
  p.k_scale = get_f32(o, "kScale");
  p.v_scale = get_f32(o, "vScale");
  p.q = ptr(o, "q", false);
  p.k_cache = ptr(o, "kCache", false);
  p.v_cache = ptr(o, "vCache", false);
  p.block_tables = static_cast<const int32_t*>(ptr(o, "blockTables", false));
  p.seq_lens = static_cast<const int32_t*>(ptr(o, "seqLens", false));
  p.out = ptr(o, "out", false);
  p.fused_reduce = get_bool_or(o, "fusedReduce", false);
  p.k_new = ptr(o, "kNew", true);
  if (p.k_new) {
    p.v_new = ptr(o, "vNew", false);
    p.rope_theta = get_f32(o, "ropeTheta");
  }
  p.pdl = get_bool_or(o, "pdl", false);
  return p;
}

void export_paged_decode(Napi::Env, Napi::Object exports) {
  STRATOS_EXPORT(exports, "cpu_paged_decode", paged_decode_cpu(params(o, host_ptr)));
#if STRATOS_WITH_CUDA
  STRATOS_EXPORT(exports, "cuda_paged_decode", paged_decode_cuda(params(o, dev_ptr), stream_of(o)));
#endif
}

}  // namespace stratos::binding
