// Write K/V into the paged cache: one block per token, 8 elements per thread.
#include "common.cuh"
#include "stratos/ops/kv_write.h"

namespace stratos {

// key/value: [numTokens, numKvHeads, headDim]; caches: [numPages, numKvHeads, pageSize, headDim].
template <typename T, typename C>
__global__ void kv_write_kernel(const T* __restrict__ key, const T* __restrict__ value, const int32_t* __restrict__ slots,
                                C* k_cache, C* v_cache, int num_kv_heads, int head_dim, int64_t page_size,
                                int64_t num_pages, float k_scale, float v_scale) {
  pdl_launch_dependents();
  pdl_wait();
  const int64_t t = blockIdx.x;
  const int32_t slot = slots[t];
  if (slot < 0) return;
  const int64_t page = slot / page_size, off = slot % page_size;
  if (page >= num_pages) return;  // index.ts range-checks host slot mappings; never write past the cache
  const int chunks = head_dim / 8;
  for (int j = threadIdx.x; j < num_kv_heads * chunks; j += blockDim.x) {
    const int h = j / chunks, c = j % chunks;
    const int64_t src = (t * num_kv_heads + h) * head_dim + c * 8;
    const int64_t dst = kv_cache_offset(page, h, num_kv_heads, page_size, off, head_dim, c * 8);
    Vec16<T> kv, vv;
    kv.load(key + src);
    vv.load(value + src);
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      if constexpr (sizeof(C) == 1) {
        k_cache[dst + e] = Elem<C>::from_f32(Elem<T>::to_f32(kv.v[e]) / k_scale);
        v_cache[dst + e] = Elem<C>::from_f32(Elem<T>::to_f32(vv.v[e]) / v_scale);
      }
    }
    if constexpr (sizeof(C) == 2) {
      kv.store(reinterpret_cast<T*>(k_cache) + dst);
      vv.store(reinterpret_cast<T*>(v_cache) + dst);
    }
  }
}

void kv_write_cuda(const KvWriteParams& p, void* stream) {
  STRATOS_CHECK(p.head_dim % 8 == 0, "kv_write", "headDim must be a multiple of 8");
  if (p.num_tokens == 0) return;
  const dim3 grid(static_cast<unsigned>(p.num_tokens));
  const int threads = 128;
  auto s = as_stream(stream);
  STRATOS_DISPATCH_16(p.src_dtype, T, "kv_write", {
    if (p.cache_dtype == DType::FP8E4M3) {
      launch_kernel(kv_write_kernel<T, __nv_fp8_e4m3>, grid, dim3(threads), 0, s, p.pdl,
          static_cast<const T*>(p.key), static_cast<const T*>(p.value), p.slot_mapping,
          static_cast<__nv_fp8_e4m3*>(p.k_cache), static_cast<__nv_fp8_e4m3*>(p.v_cache), static_cast<int>(p.num_kv_heads),
          static_cast<int>(p.head_dim), p.page_size, p.num_pages, p.k_scale, p.v_scale);
    } else {
      STRATOS_CHECK(p.cache_dtype == p.src_dtype, "kv_write", "a 16-bit cache must have the dtype of key/value");
      launch_kernel(kv_write_kernel<T, T>, grid, dim3(threads), 0, s, p.pdl,
          static_cast<const T*>(p.key), static_cast<const T*>(p.value), p.slot_mapping, static_cast<T*>(p.k_cache),
          static_cast<T*>(p.v_cache), static_cast<int>(p.num_kv_heads), static_cast<int>(p.head_dim), p.page_size,
          p.num_pages, 1.0f, 1.0f);
    }
  });
  cuda_check_launch("kv_write");
}

}  // namespace stratos
