#include "binding.h"
#include "stratos/ops/lora.h"

namespace stratos::binding {

template <typename Ptr>
static LoraShrinkParams shrink_params(const Napi::Object& o, Ptr ptr) {
  LoraShrinkParams p;
  p.dtype = get_dtype(o, "dtype");
  p.num_tokens = get_i64(o, "numTokens");
  p.in_dim = get_i64(o, "inDim");
  p.max_rank = get_i64(o, "maxRank");
  p.num_slots = get_i64(o, "numSlots");
  p.num_segs = get_i64(o, "numSegs");
  p.x = ptr(o, "x", false);
  p.a = ptr(o, "a", false);
  p.ranks = static_cast<const int32_t*>(ptr(o, "ranks", false));
  p.seg_starts = static_cast<const int32_t*>(ptr(o, "segStarts", true));
  p.seg_slots = static_cast<const int32_t*>(ptr(o, "segSlots", false));
  p.y = static_cast<float*>(ptr(o, "y", false));
  return p;
}

template <typename Ptr>
static LoraExpandParams expand_params(const Napi::Object& o, Ptr ptr) {
  LoraExpandParams p;
  p.dtype = get_dtype(o, "dtype");
  p.num_tokens = get_i64(o, "numTokens");
  p.out_dim = get_i64(o, "outDim");
  p.max_rank = get_i64(o, "maxRank");
  p.num_slots = get_i64(o, "numSlots");
  p.num_segs = get_i64(o, "numSegs");
  p.y = static_cast<const float*>(ptr(o, "y", false));
  p.b = ptr(o, "b", false);
  p.ranks = static_cast<const int32_t*>(ptr(o, "ranks", false));
  p.scales = static_cast<const float*>(ptr(o, "scales", false));
  p.seg_starts = static_cast<const int32_t*>(ptr(o, "segStarts", true));
  p.seg_slots = static_cast<const int32_t*>(ptr(o, "segSlots", false));
  p.out = ptr(o, "out", false);
  return p;
}

void export_lora(Napi::Env, Napi::Object exports) {
  STRATOS_EXPORT(exports, "cpu_lora_shrink", lora_shrink_cpu(shrink_params(o, host_ptr)));
  STRATOS_EXPORT(exports, "cpu_lora_expand", lora_expand_cpu(expand_params(o, host_ptr)));
#if STRATOS_WITH_CUDA
  STRATOS_EXPORT(exports, "cuda_lora_shrink", lora_shrink_cuda(shrink_params(o, dev_ptr), stream_of(o)));
  STRATOS_EXPORT(exports, "cuda_lora_expand", lora_expand_cuda(expand_params(o, dev_ptr), stream_of(o)));
#endif
}

}  // namespace stratos::binding
