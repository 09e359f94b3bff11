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
  pdl_launch_dependents();
  pdl_wait();
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

// rope_kernel plus kv_write's work: the threads past the rotated pairs copy v and k's unrotated
// dims into the cache, and a thread rotating a k pair stores it there too (as kv_write would have
// read it back: the same rounded values).
template <typename T>
__global__ void rope_kv_kernel(const int32_t* __restrict__ positions, T* q, T* k, const T* __restrict__ v,
                               const int32_t* __restrict__ slots, T* k_cache, T* v_cache, int num_heads, int num_kv_heads,
                               int head_dim, int rot_dim, float theta, bool neox, int64_t page_size, int64_t num_pages) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t t = blockIdx.x;
  const float pos = static_cast<float>(positions[t]);
  const int32_t slot = slots[t];
  const int64_t page = slot / page_size, off = slot % page_size;
  const bool write = slot >= 0 && page < num_pages;  // index.ts range-checks host slots; never write past the cache
  const int half = rot_dim / 2;
  const int pairs = (num_heads + num_kv_heads) * half;
  const int v_elems = num_kv_heads * head_dim;
  const int k_rest = head_dim - rot_dim;
  const int total = pairs + v_elems + num_kv_heads * k_rest;
  auto cache_at = [&](int h, int d) { return ((page * num_kv_heads + h) * page_size + off) * head_dim + d; };
  for (int j = blockIdx.y * blockDim.x + threadIdx.x; j < total; j += gridDim.y * blockDim.x) {
    if (j < pairs) {
      const int head = j / half, i = j % half;
      const float inv_freq = powf(theta, -2.0f * static_cast<float>(i) / static_cast<float>(rot_dim));
      float s, c;
      sincosf(pos * inv_freq, &s, &c);
      const bool is_k = head >= num_heads;
      T* row = is_k ? k + (t * num_kv_heads + (head - num_heads)) * head_dim : q + (t * num_heads + head) * head_dim;
      const int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
      rotate(row, i0, i1, c, s);
      if (is_k && write) {
        k_cache[cache_at(head - num_heads, i0)] = row[i0];
        k_cache[cache_at(head - num_heads, i1)] = row[i1];
      }
    } else if (!write) {
      continue;
    } else if (j < pairs + v_elems) {
      const int e = j - pairs, h = e / head_dim, d = e % head_dim;
      v_cache[cache_at(h, d)] = v[(t * num_kv_heads + h) * head_dim + d];
    } else {
      const int e = j - pairs - v_elems, h = e / k_rest, d = rot_dim + e % k_rest;
      k_cache[cache_at(h, d)] = k[(t * num_kv_heads + h) * head_dim + d];
    }
  }
}

void rope_cuda(const RopeParams& p, void* stream) {
  if (p.num_tokens == 0) return;
  if (p.k_cache) {
    const int64_t work = (p.num_heads + p.num_kv_heads) * (p.rot_dim / 2) + p.num_kv_heads * (2 * p.head_dim - p.rot_dim);
    const dim3 grid(static_cast<unsigned>(p.num_tokens), static_cast<unsigned>((work + 255) / 256));
    STRATOS_DISPATCH_16(p.dtype, T, "rope", {
      launch_kernel(rope_kv_kernel<T>, grid, dim3(256), 0, as_stream(stream), p.pdl, p.positions, static_cast<T*>(p.q),
                    static_cast<T*>(p.k), static_cast<const T*>(p.value), p.slot_mapping, static_cast<T*>(p.k_cache),
                    static_cast<T*>(p.v_cache), static_cast<int>(p.num_heads), static_cast<int>(p.num_kv_heads),
                    static_cast<int>(p.head_dim), static_cast<int>(p.rot_dim), p.theta, p.neox, p.page_size, p.num_pages);
    });
    cuda_check_launch("rope");
    return;
  }
  const int64_t pairs = (p.num_heads + p.num_kv_heads) * (p.rot_dim / 2);
  const dim3 grid(static_cast<unsigned>(p.num_tokens), static_cast<unsigned>((pairs + 255) / 256 > 0 ? (pairs + 255) / 256 : 1));
  STRATOS_DISPATCH_16(p.dtype, T, "rope", {
    launch_kernel(rope_kernel<T>, grid, dim3(256), 0, as_stream(stream), p.pdl,
        p.positions, static_cast<T*>(p.q), static_cast<T*>(p.k), static_cast<int>(p.num_heads),
        static_cast<int>(p.num_kv_heads), static_cast<int>(p.head_dim), static_cast<int>(p.rot_dim), p.theta, p.neox);
  });
  cuda_check_launch("rope");
}

}  // namespace stratos
