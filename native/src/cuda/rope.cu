// Rotary embedding in place: blocks of (token, pair chunk), one thread per rotated pair. A token's
// pairs are spread over several blocks: with one block per token a decode step of one token ran
// all of its 4,096 pairs (each a powf and a sincosf) on a single SM (~13 us at the 7B shape).
#include "common.cuh"
#include "stratos/ops/rope.h"

namespace stratos {

template <typename T>
__device__ __forceinline__ void rotate(T* x, int64_t i0, int64_t i1, float c, float s) {
  const float x0 = Elem<T>::to_f32(x[i0]), x1 = Elem<T>::to_f32(x[i1]);
  x[i0] = Elem<T>::from_f32(x0 * c - x1 * s);
  x[i1] = Elem<T>::from_f32(x1 * c + x0 * s);
}

// q: [numTokens, numHeads, headDim], k: [numTokens, numKvHeads, headDim]
template <typename T>
__global__ void rope_kernel(const int32_t* __restrict__ positions, T* q, T* k, int num_heads, int num_kv_heads,
                            int head_dim, int rot_dim, float theta, bool neox) {
  const int64_t t = blockIdx.x;
  const float pos = static_cast<float>(positions[t]);
  const int half = rot_dim / 2;
  const int pairs = (num_heads + num_kv_heads) * half;
  for (int j = blockIdx.y * blockDim.x + threadIdx.x; j < pairs; j += gridDim.y * blockDim.x) {
    const int head = j / half, i = j % half;
    const float inv_freq = powf(theta, -2.0f * static_cast<float>(i) / static_cast<float>(rot_dim));
    float s, c;
    sincosf(pos * inv_freq, &s, &c);
    T* row = head < num_heads ? q + (t * num_heads + head) * head_dim
                              : k + (t * num_kv_heads + (head - num_heads)) * head_dim;
    if (neox) rotate(row, i, i + half, c, s);
    else rotate(row, 2 * i, 2 * i + 1, c, s);
  }
}

void rope_cuda(const RopeParams& p, void* stream) {
  if (p.num_tokens == 0) return;
  const int64_t pairs = (p.num_heads + p.num_kv_heads) * (p.rot_dim / 2);
  const dim3 grid(static_cast<unsigned>(p.num_tokens), static_cast<unsigned>((pairs + 255) / 256 > 0 ? (pairs + 255) / 256 : 1));
  STRATOS_DISPATCH_16(p.dtype, T, "rope", {
    rope_kernel<T><<<grid, 256, 0, as_stream(stream)>>>(
        p.positions, static_cast<T*>(p.q), static_cast<T*>(p.k), static_cast<int>(p.num_heads),
        static_cast<int>(p.num_kv_heads), static_cast<int>(p.head_dim), static_cast<int>(p.rot_dim), p.theta, p.neox);
  });
  cuda_check_launch("rope");
}

}  // namespace stratos
