// Prefill and chunked-prefill attention over the paged cache (causal, variable lengths).
// Each sequence s has qLen = cuSeqlensQ[s+1] - cuSeqlensQ[s] new tokens whose K/V have already
// been written to the cache (kv_write), after ctx = seqLensKv[s] - qLen earlier tokens. Query i of
// s sits at position ctx + i and attends to cache positions [0, ctx + i].
#pragma once
#include <cstdint>
#include "stratos/dtype.h"

namespace stratos {

struct PrefillParams {
  DType dtype = DType::BF16;  // of q, caches and out: bf16 or f16
  int64_t num_seqs = 0, num_tokens = 0, num_heads = 0, num_kv_heads = 0, head_dim = 0;
  int64_t page_size = 0, num_pages = 0, max_pages_per_seq = 0;
  int64_t max_q_len = 0;  // an upper bound of the per-sequence query lengths
  float scale = 1.0f;
  const void* q = nullptr;                // [numTokens, numHeads, headDim]
  const int32_t* cu_seqlens_q = nullptr;  // [numSeqs + 1]
  const int32_t* seq_lens_kv = nullptr;   // [numSeqs]
  const int32_t* block_tables = nullptr;  // [numSeqs, maxPagesPerSeq]
  const void* k_cache = nullptr;          // [numPages, numKvHeads, pageSize, headDim]
  const void* v_cache = nullptr;          // [numPages, numKvHeads, pageSize, headDim]
  void* out = nullptr;                    // [numTokens, numHeads, headDim]
};

void prefill_cpu(const PrefillParams& p);
void prefill_cuda(const PrefillParams& p, void* stream);

}  // namespace stratos
