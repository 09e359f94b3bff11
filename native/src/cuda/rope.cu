// Rotary embedding in place: blocks of (token, pair chunk), one thread per rotated pair. A token's
// pairs are spread over several blocks: with one block per token a decode step of one token ran
// all of its 4,096 pairs (each a powf and a sincosf) on a single SM (~13 us at the 7B shape).
#include <algorithm>

#include "common.cuh"
#include "stratos/ops/rope.h"

namespace stratos {

// Rotates pair (i0, i1) of a row in place, rounding as stored.
template <typename T>
__device__ __forceinline__ void rotate(T* x, int64_t i0, int64_t i1, float c, float s) {
  const float x0 = Elem<T>::to_f32(x[i0]), x1 = Elem<T>::to_f32(x[i1]);
  x[i0] = Elem<T>::from_f32(rope_first(x0, x1, c, s));
  x[i1] = Elem<T>::from_f32(rope_second(x0, x1, c, s));
}

// q: [numTokens, numHeads, headDim], k: [numTokens, numKvHeads, headDim]. With k_cache, kv_write's
// work too: a thread rotating a k pair also stores it in the cache (the rounded values kv_write
// would have read back), and the threads past the rotated pairs copy v and k's unrotated dims.
template <typename T>
__global__ void rope_kernel(const int32_t* __restrict__ positions, T* q, T* k, const T* __restrict__ v,
                            const int32_t* __restrict__ slots, T* k_cache, T* v_cache, int num_heads, int num_kv_heads,
                            int head_dim, int rot_dim, float theta, bool neox, int64_t page_size, int64_t num_pages) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t t = blockIdx.x;
  const float pos = static_cast<float>(positions[t]);
  const int32_t slot = k_cache != nullptr ? slots[t] : -1;
  const int64_t page = slot / page_size, off = slot % page_size;
  const bool write = slot >= 0 && page < num_pages;  // index.ts range-checks host slots; never write past the cache
  const int half = rot_dim / 2;
  const int pairs = (num_heads + num_kv_heads) * half;
  const int v_elems = num_kv_heads * head_dim;
  const int k_rest = head_dim - rot_dim;
  const int total = k_cache != nullptr ? pairs + v_elems + num_kv_heads * k_rest : pairs;
  for (int j = blockIdx.y * blockDim.x + threadIdx.x; j < total; j += gridDim.y * blockDim.x) {
    if (j < pairs) {
      const int head = j / half, i = j % half;
      float c, s;
      rope_cos_sin(pos, i, rot_dim, theta, c, s);
      const bool is_k = head >= num_heads;
      T* row = is_k ? k + (t * num_kv_heads + (head - num_heads)) * head_dim : q + (t * num_heads + head) * head_dim;
      const int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
      rotate(row, i0, i1, c, s);
      if (is_k && write) {
        k_cache[kv_cache_offset(page, head - num_heads, num_kv_heads, page_size, off, head_dim, i0)] = row[i0];
        k_cache[kv_cache_offset(page, head - num_heads, num_kv_heads, page_size, off, head_dim, i1)] = row[i1];
      }
    } else if (!write) {
      continue;
    } else if (j < pairs + v_elems) {
      const int e = j - pairs, h = e / head_dim, d = e % head_dim;
      v_cache[kv_cache_offset(page, h, num_kv_heads, page_size, off, head_dim, d)] = v[(t * num_kv_heads + h) * head_dim + d];
    } else {
      const int e = j - pairs - v_elems, h = e / k_rest, d = rot_dim + e % k_rest;
      k_cache[kv_cache_offset(page, h, num_kv_heads, page_size, off, head_dim, d)] = k[(t * num_kv_heads + h) * head_dim + d];
    }
  }
}

void rope_cuda(const RopeParams& p, void* stream) {
  if (p.num_tokens == 0) return;
  const int64_t pairs = (p.num_heads + p.num_kv_heads) * (p.rot_dim / 2);
  const int64_t work = p.k_cache ? pairs + p.num_kv_heads * (2 * p.head_dim - p.rot_dim) : pairs;
  const dim3 grid(static_cast<unsigned>(p.num_tokens), static_cast<unsigned>(std::max<int64_t>(1, (work + 255) / 256)));
  STRATOS_DISPATCH_16(p.dtype, T, "rope", {
    launch_kernel(rope_kernel<T>, grid, dim3(256), 0, as_stream(stream), p.pdl, p.positions, static_cast<T*>(p.q),
                  static_cast<T*>(p.k), static_cast<const T*>(p.value), p.slot_mapping, static_cast<T*>(p.k_cache),
                  static_cast<T*>(p.v_cache), static_cast<int>(p.num_heads), static_cast<int>(p.num_kv_heads),
                  static_cast<int>(p.head_dim), static_cast<int>(p.rot_dim), p.theta, p.neox, p.page_size, p.num_pages);
  });
  cuda_check_launch("rope");
}

}  // namespace stratos
