#include "binding.h"
#include "stratos/ops/prefill.h"

namespace stratos::binding {

template <typename Ptr>
static PrefillParams params(const Napi::Object& o, Ptr ptr) {
  PrefillParams p;
  p.dtype = get_dtype(o, "dtype");
  p.num_seqs = get_i64(o, "numSeqs");
  p.num_tokens = get_i64(o, "numTokens");
  p.num_heads = get_i64(o, "numHeads");
  p.num_kv_heads = get_i64(o, "numKvHeads");
  p.head_dim = get_i64(o, "headDim");
  p.page_size = get_i64(o, "pageSize");
  p.num_pages = get_i64(o, "numPages");
  p.max_pages_per_seq = get_i64(o, "maxPagesPerSeq");
  p.max_q_len = get_i64(o, "maxQLen");
  p.scale = get_f32(o, "scale");
  p.q = ptr(o, "q", false);
  p.cu_seqlens_q = static_cast<const int32_t*>(ptr(o, "cuSeqlensQ", false));
  p.seq_lens_kv = static_cast<const int32_t*>(ptr(o, "seqLensKv", false));
  p.block_tables = static_cast<const int32_t*>(ptr(o, "blockTables", false));
  p.k_cache = ptr(o, "kCache", false);
  p.v_cache = ptr(o, "vCache", false);
  p.out = ptr(o, "out", false);
  return p;
}

void export_prefill(Napi::Env, Napi::Object exports) {
  STRATOS_EXPORT(exports, "cpu_prefill", prefill_cpu(params(o, host_ptr)));
#if STRATOS_WITH_CUDA
  STRATOS_EXPORT(exports, "cuda_prefill", prefill_cuda(params(o, dev_ptr), stream_of(o)));
#endif
}

}  // namespace stratos::binding
