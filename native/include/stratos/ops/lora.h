// Multi-LoRA for a batch that mixes adapters of different ranks (Punica/S-LoRA style).
// Adapters live in slots of a pool padded to maxRank:
//   A pool [numSlots, maxRank, inDim], B pool [numSlots, outDim, maxRank], ranks[numSlots] <= maxRank,
//   scales[numSlots] (usually alpha / rank).
// shrink: y[t, r] = sum_k x[t, k] * A[slot(t), r, k] for r < rank(slot(t)), else 0 (y in f32)
// expand: out[t, n] += scale(slot(t)) * sum_{r < rank} y[t, r] * B[slot(t), n, r]
// Tokens are grouped either as segments (segStarts [numSegs + 1], segSlots [numSegs]: tokens
// segStarts[s] .. segStarts[s+1]-1 share slot segSlots[s]) or per token (segStarts = null,
// segSlots [numTokens]). A slot < 0 means "no adapter": y = 0 and out is left alone.
#pragma once
#include <cstdint>
#include "stratos/dtype.h"

namespace stratos {

struct LoraShrinkParams {
  DType dtype = DType::BF16;  // of x and A
  int64_t num_tokens = 0, in_dim = 0, max_rank = 0, num_slots = 0, num_segs = 0;
  const void* x = nullptr;            // [numTokens, inDim]
  const void* a = nullptr;            // [numSlots, maxRank, inDim]
  const int32_t* ranks = nullptr;     // [numSlots]
  const int32_t* seg_starts = nullptr;  // [numSegs + 1] or null (per-token)
  const int32_t* seg_slots = nullptr;   // [numSegs] (or [numTokens] per-token)
  float* y = nullptr;                 // [numTokens, maxRank]
};

struct LoraExpandParams {
  DType dtype = DType::BF16;  // of B and out
  int64_t num_tokens = 0, out_dim = 0, max_rank = 0, num_slots = 0, num_segs = 0;
  const float* y = nullptr;           // [numTokens, maxRank]
  const void* b = nullptr;            // [numSlots, outDim, maxRank]
  const int32_t* ranks = nullptr;     // [numSlots]
  const float* scales = nullptr;      // [numSlots]
  const int32_t* seg_starts = nullptr;
  const int32_t* seg_slots = nullptr;
  void* out = nullptr;                // [numTokens, outDim], accumulated into
};

void lora_shrink_cpu(const LoraShrinkParams& p);
void lora_expand_cpu(const LoraExpandParams& p);
void lora_shrink_cuda(const LoraShrinkParams& p, void* stream);
void lora_expand_cuda(const LoraExpandParams& p, void* stream);

}  // namespace stratos
