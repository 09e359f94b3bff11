#include "binding.h"
#include "stratos/ops/embedding.h"

namespace stratos::binding {

template <typename Ptr>
static EmbeddingParams params(const Napi::Object& o, Ptr ptr) {
  EmbeddingParams p;
  p.dtype = get_dtype(o, "dtype");
  p.vocab = get_i64(o, "vocab");
  p.hidden = get_i64(o, "hidden");
  p.num_tokens = get_i64(o, "numTokens");
  p.table = ptr(o, "table", false);
  p.ids = static_cast<const int32_t*>(ptr(o, "ids", false));
  p.out = ptr(o, "out", false);
  return p;
}

void export_embedding(Napi::Env, Napi::Object exports) {
  STRATOS_EXPORT(exports, "cpu_embedding", embedding_cpu(params(o, host_ptr)));
#if STRATOS_WITH_CUDA
  STRATOS_EXPORT(exports, "cuda_embedding", embedding_cuda(params(o, dev_ptr), stream_of(o)));
#endif
}

}  // namespace stratos::binding
