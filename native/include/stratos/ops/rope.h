// Rotary position embedding, applied in place to q and k.
// Frequencies: inv_freq[i] = theta^(-2i/rotDim), angle = position * inv_freq[i], computed in f32.
// neox = true rotates the halves (x[i], x[i + rotDim/2]) as in Llama/GPT-NeoX;
// neox = false rotates adjacent pairs (x[2i], x[2i+1]) as in GPT-J. Dims >= rotDim are untouched.
// With k_cache given it also does kv_write's work (a cache of q's dtype): the rotated k and v go to
// the paged cache at slot_mapping, one launch instead of two (batch-1 decode, where launches are
// a large share of the step).
#pragma once
#include <cstdint>
#include "stratos/dtype.h"

namespace stratos {

struct RopeParams {
  DType dtype = DType::BF16;  // of q and k
  int64_t num_tokens = 0, num_heads = 0, num_kv_heads = 0, head_dim = 0, rot_dim = 0;
  float theta = 10000.0f;
  bool neox = true;
  const int32_t* positions = nullptr;  // [numTokens]
  void* q = nullptr;                   // [numTokens, numHeads, headDim]
  void* k = nullptr;                   // [numTokens, numKvHeads, headDim]
  // Optional KV write (k_cache null: none); layout and slots as kv_write.h.
  const void* value = nullptr;           // [numTokens, numKvHeads, headDim]
  const int32_t* slot_mapping = nullptr; // [numTokens]
  void* k_cache = nullptr;               // [numPages, numKvHeads, pageSize, headDim]
  void* v_cache = nullptr;
  int64_t page_size = 0, num_pages = 0;
  bool pdl = false;  // GPU: launch as a programmatic dependent of the previous kernel (common.cuh)
};

void rope_cpu(const RopeParams& p);
void rope_cuda(const RopeParams& p, void* stream);

}  // namespace stratos
