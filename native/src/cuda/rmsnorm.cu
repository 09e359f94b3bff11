// RMSNorm fused with the residual add: one block per token, 16-byte vectors, f32 arithmetic.
#include "common.cuh"
#include "stratos/ops/rmsnorm.h"

namespace stratos {

// x, residual, out: [numTokens, hidden]; weight: [hidden]. hidden % 8 == 0.
template <typename T>
__global__ void rmsnorm_kernel(const T* __restrict__ x, T* __restrict__ residual, const T* __restrict__ weight,
                               T* out, int64_t hidden, float eps) {
  __shared__ float scratch[32];
  using V = Vec16<T>;
  const int64_t base = blockIdx.x * hidden;
  const int64_t nvec = hidden / V::N;
  float sum_sq = 0.0f;
  // Pass 1: h = x (+ residual, stored rounded), accumulate sum of squares of the rounded h.
  for (int64_t i = threadIdx.x; i < nvec; i += blockDim.x) {
    V xv;
    xv.load(x + base + i * V::N);
    float h[V::N];
    xv.to_f32(h);
    if (residual) {
      V rv;
      rv.load(residual + base + i * V::N);
      float r[V::N];
      rv.to_f32(r);
#pragma unroll
      for (int j = 0; j < V::N; ++j) h[j] += r[j];
      rv.from_f32(h);
      rv.store(residual + base + i * V::N);
      rv.to_f32(h);
    }
#pragma unroll
    for (int j = 0; j < V::N; ++j) sum_sq += h[j] * h[j];
  }
  const float inv_rms = 1.0f / sqrtf(block_sum(sum_sq, scratch) / static_cast<float>(hidden) + eps);
  // Pass 2: reread h (from L1/L2) and scale.
  const T* src = residual ? residual : x;
  for (int64_t i = threadIdx.x; i < nvec; i += blockDim.x) {
    V hv, wv;
    hv.load(src + base + i * V::N);
    wv.load(weight + i * V::N);
    float h[V::N], w[V::N];
    hv.to_f32(h);
    wv.to_f32(w);
#pragma unroll
    for (int j = 0; j < V::N; ++j) h[j] = h[j] * inv_rms * w[j];
    hv.from_f32(h);
    hv.store(out + base + i * V::N);
  }
}

void rmsnorm_cuda(const RmsNormParams& p, void* stream) {
  STRATOS_CHECK(p.hidden % 8 == 0, "rmsnorm", "hidden must be a multiple of 8");
  if (p.num_tokens == 0) return;
  const int64_t nvec = p.hidden / 8;
  const int threads = nvec >= 512 ? 512 : static_cast<int>(((nvec + 31) / 32) * 32);
  STRATOS_DISPATCH_16(p.dtype, T, "rmsnorm", {
    rmsnorm_kernel<T><<<static_cast<unsigned>(p.num_tokens), threads, 0, as_stream(stream)>>>(
        static_cast<const T*>(p.x), static_cast<T*>(p.residual), static_cast<const T*>(p.weight),
        static_cast<T*>(p.out), p.hidden, p.eps);
  });
  cuda_check_launch("rmsnorm");
}

}  // namespace stratos
