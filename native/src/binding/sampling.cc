#include "binding.h"
#include "stratos/ops/sampling.h"

namespace stratos::binding {

template <typename Ptr>
static SamplingParams params(const Napi::Object& o, Ptr ptr) {
  SamplingParams p;
  p.batch = get_i64(o, "batch");
  p.vocab = get_i64(o, "vocab");
  p.logits = static_cast<const float*>(ptr(o, "logits", false));
  p.temperature = static_cast<const float*>(ptr(o, "temperature", false));
  p.top_k = static_cast<const int32_t*>(ptr(o, "topK", false));
  p.top_p = static_cast<const float*>(ptr(o, "topP", false));
  p.min_p = static_cast<const float*>(ptr(o, "minP", false));
  p.seeds = static_cast<const uint64_t*>(ptr(o, "seeds", false));
  p.offsets = static_cast<const uint64_t*>(ptr(o, "offsets", false));
  p.tokens = static_cast<int32_t*>(ptr(o, "tokens", false));
  p.logprobs = static_cast<float*>(ptr(o, "logprobs", false));
  p.status = static_cast<int32_t*>(ptr(o, "status", false));
  return p;
}

void export_sampling(Napi::Env, Napi::Object exports) {
  STRATOS_EXPORT(exports, "cpu_sampling", sampling_cpu(params(o, host_ptr)));
#if STRATOS_WITH_CUDA
  STRATOS_EXPORT(exports, "cuda_sampling", sampling_cuda(params(o, dev_ptr), stream_of(o)));
#endif
}

}  // namespace stratos::binding
