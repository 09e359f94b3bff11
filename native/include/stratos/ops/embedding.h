// Embedding gather: out[t, :] = table[ids[t], :].
#pragma once
#include <cstdint>
#include "stratos/dtype.h"

namespace stratos {

struct EmbeddingParams {
  DType dtype = DType::BF16;      // of table and out
  int64_t vocab = 0, hidden = 0;  // table [vocab, hidden]
  int64_t num_tokens = 0;
  const void* table = nullptr;
  const int32_t* ids = nullptr;  // [numTokens]; an id outside [0, vocab) yields a zero row on the GPU
  void* out = nullptr;           // [numTokens, hidden]
};

void embedding_cpu(const EmbeddingParams& p);
void embedding_cuda(const EmbeddingParams& p, void* stream);

}  // namespace stratos
