// CPU reference: multi-LoRA shrink and expand.
#include "stratos/error.h"
#include "stratos/ops/lora.h"

namespace stratos {

// Calls fn(token, slot) for every token, in either grouping.
template <typename Fn>
static void for_each_token(const int32_t* starts, const int32_t* slots, int64_t num_segs, int64_t num_tokens, Fn fn) {
  if (!starts) {
    for (int64_t t = 0; t < num_tokens; ++t) fn(t, slots[t]);
    return;
  }
  for (int64_t s = 0; s < num_segs; ++s)
    for (int64_t t = starts[s]; t < starts[s + 1]; ++t) fn(t, slots[s]);
}

void lora_shrink_cpu(const LoraShrinkParams& p) {
  for (int64_t i = 0; i < p.num_tokens * p.max_rank; ++i) p.y[i] = 0.0f;
  for_each_token(p.seg_starts, p.seg_slots, p.num_segs, p.num_tokens, [&](int64_t t, int32_t slot) {
    if (slot < 0) return;
    STRATOS_CHECK(slot < p.num_slots, "lora_shrink", "slot out of range");
    const int64_t rank = p.ranks[slot];
    for (int64_t r = 0; r < rank; ++r) {
      float acc = 0.0f;
      const size_t ab = static_cast<size_t>((slot * p.max_rank + r) * p.in_dim);
      for (int64_t k = 0; k < p.in_dim; ++k)
        acc += load_f32(p.x, p.dtype, static_cast<size_t>(t * p.in_dim + k)) * load_f32(p.a, p.dtype, ab + k);
      p.y[t * p.max_rank + r] = acc;
    }
  });
}

void lora_expand_cpu(const LoraExpandParams& p) {
  for_each_token(p.seg_starts, p.seg_slots, p.num_segs, p.num_tokens, [&](int64_t t, int32_t slot) {
    if (slot < 0) return;
    STRATOS_CHECK(slot < p.num_slots, "lora_expand", "slot out of range");
    const int64_t rank = p.ranks[slot];
    for (int64_t n = 0; n < p.out_dim; ++n) {
      float acc = 0.0f;
      const size_t bb = static_cast<size_t>((slot * p.out_dim + n) * p.max_rank);
      for (int64_t r = 0; r < rank; ++r) acc += p.y[t * p.max_rank + r] * load_f32(p.b, p.dtype, bb + r);
      const size_t o = static_cast<size_t>(t * p.out_dim + n);
      store_f32(p.out, p.dtype, o, load_f32(p.out, p.dtype, o) + p.scales[slot] * acc);
    }
  });
}

}  // namespace stratos
