// Paged decode attention: one query token per sequence against its whole cached context.
//   out[s, h, :] = softmax(scale * q[s,h,:] . K[s, kvh, 0:len, :]) V[s, kvh, 0:len, :]
// with kvh = h / (numHeads / numKvHeads) (MHA when equal, GQA otherwise). The GPU splits each
// context into partitions (flash-decoding) and merges the partial softmaxes in a second kernel.
#pragma once
#include <cstdint>
#include "stratos/dtype.h"

namespace stratos {

struct PagedDecodeParams {
  DType q_dtype = DType::BF16;   // of q and out: bf16 or f16
  DType kv_dtype = DType::BF16;  // bf16, f16 (same as q) or fp8e4m3
  int64_t num_seqs = 0, num_heads = 0, num_kv_heads = 0, head_dim = 0;
  int64_t page_size = 0, num_pages = 0, max_pages_per_seq = 0;
  int64_t max_seq_len = 0;   // an upper bound of seq_lens, for planning the split
  int64_t partition_tokens = 0;  // tokens per split on the GPU; 0 chooses
  float scale = 1.0f;        // usually 1/sqrt(headDim)
  float k_scale = 1.0f, v_scale = 1.0f;  // fp8 dequantization scales
  const void* q = nullptr;               // [numSeqs, numHeads, headDim]
  const void* k_cache = nullptr;         // [numPages, numKvHeads, pageSize, headDim]
  const void* v_cache = nullptr;         // [numPages, numKvHeads, pageSize, headDim]
  const int32_t* block_tables = nullptr; // [numSeqs, maxPagesPerSeq]
  const int32_t* seq_lens = nullptr;     // [numSeqs], tokens in the cache (0 gives a zero row)
  void* out = nullptr;                   // [numSeqs, numHeads, headDim]
  // GPU: the last block of each (sequence, head) to finish merges the partitions itself (the same
  // arithmetic as the merge kernel, so the same bits), saving that launch. Used by batch-1 decode.
  bool fused_reduce = false;
  // Rope and KV write folded in (k_new given; 16-bit caches of q's dtype): each sequence's newest
  // token (position seq_len - 1) is not in the cache yet; q and its k are rotated here (NeoX halves,
  // the whole head, rope_theta) exactly as rope would, and its k and v are written to the cache at
  // that position's slot. q, k_new and v_new are left as they are.
  const void* k_new = nullptr;  // [numSeqs, numKvHeads, headDim], before rotation
  const void* v_new = nullptr;  // [numSeqs, numKvHeads, headDim]
  float rope_theta = 10000.0f;
  bool pdl = false;  // GPU: launch as a programmatic dependent of the previous kernel (common.cuh)
};

void paged_decode_cpu(const PagedDecodeParams& p);
void paged_decode_cuda(const PagedDecodeParams& p, void* stream);

}  // namespace stratos
