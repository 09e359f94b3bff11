// Embedding gather: one block per token copies its table row in 16-byte pieces.
#include "common.cuh"
#include "stratos/ops/embedding.h"

namespace stratos {

// out[t, :] = table[ids[t], :]; rows of row_bytes bytes. An id out of range yields zeros.
template <typename V>
__global__ void embedding_kernel(const V* __restrict__ table, const int32_t* __restrict__ ids, V* __restrict__ out,
                                 int64_t vocab, int64_t row_vecs) {
  const int64_t t = blockIdx.x;
  const int32_t id = ids[t];
  V* dst = out + t * row_vecs;
  if (id < 0 || id >= vocab) {
    V zero{};
    for (int64_t i = threadIdx.x; i < row_vecs; i += blockDim.x) dst[i] = zero;
    return;
  }
  const V* src = table + static_cast<int64_t>(id) * row_vecs;
  for (int64_t i = threadIdx.x; i < row_vecs; i += blockDim.x) dst[i] = src[i];
}

void embedding_cuda(const EmbeddingParams& p, void* stream) {
  if (p.num_tokens == 0) return;
  const size_t row_bytes = static_cast<size_t>(p.hidden) * dtype_bytes(p.dtype);
  const dim3 grid(static_cast<unsigned>(p.num_tokens));
  if (row_bytes % 16 == 0) {
    embedding_kernel<uint4><<<grid, 128, 0, as_stream(stream)>>>(static_cast<const uint4*>(p.table), p.ids,
                                                                  static_cast<uint4*>(p.out), p.vocab, row_bytes / 16);
  } else {
    embedding_kernel<uint16_t><<<grid, 128, 0, as_stream(stream)>>>(static_cast<const uint16_t*>(p.table), p.ids,
                                                                     static_cast<uint16_t*>(p.out), p.vocab, row_bytes / 2);
  }
  cuda_check_launch("embedding");
}

}  // namespace stratos
