// Write new K/V rows into the paged cache by slot mapping.
// Cache layout (everywhere in Stratos): [numPages, numKvHeads, pageSize, headDim] ("HND"), so one
// head's tokens of one page are contiguous and attention streams them in long runs.
// slot = page * pageSize + offsetInPage; a negative slot (padding) is skipped.
// fp8 caches store value / scale (e4m3, saturating); k_scale and v_scale are per tensor.
#pragma once
#include <cstdint>
#include "stratos/dtype.h"

namespace stratos {

struct KvWriteParams {
  DType src_dtype = DType::BF16;    // of key and value
  DType cache_dtype = DType::BF16;  // bf16, f16 or fp8e4m3
  int64_t num_tokens = 0, num_kv_heads = 0, head_dim = 0, page_size = 0, num_pages = 0;
  float k_scale = 1.0f, v_scale = 1.0f;
  const void* key = nullptr;            // [numTokens, numKvHeads, headDim]
  const void* value = nullptr;          // [numTokens, numKvHeads, headDim]
  const int32_t* slot_mapping = nullptr;  // [numTokens]
  void* k_cache = nullptr;              // [numPages, numKvHeads, pageSize, headDim]
  void* v_cache = nullptr;              // [numPages, numKvHeads, pageSize, headDim]
  bool pdl = false;  // GPU: launch as a programmatic dependent of the previous kernel (common.cuh)
};

void kv_write_cpu(const KvWriteParams& p);
void kv_write_cuda(const KvWriteParams& p, void* stream);

}  // namespace stratos
