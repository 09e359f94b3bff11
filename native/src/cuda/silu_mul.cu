// SiLU-and-mul: 8 outputs per thread, 16-byte loads.
#include "common.cuh"
#include "stratos/ops/silu_mul.h"

namespace stratos {

// x: [numTokens, 2d] (gate | up); out: [numTokens, d]; d % 8 == 0.
template <typename T>
__global__ void silu_mul_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t d) {
  const int64_t t = blockIdx.x;
  const int64_t i = (static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x) * 8;
  if (i >= d) return;
  Vec16<T> gv, uv;
  gv.load(x + t * 2 * d + i);
  uv.load(x + t * 2 * d + d + i);
  float g[8], u[8];
  gv.to_f32(g);
  uv.to_f32(u);
#pragma unroll
  for (int j = 0; j < 8; ++j) g[j] = g[j] / (1.0f + expf(-g[j])) * u[j];
  gv.from_f32(g);
  gv.store(out + t * d + i);
}

void silu_mul_cuda(const SiluMulParams& p, void* stream) {
  STRATOS_CHECK(p.d % 8 == 0, "silu_mul", "d must be a multiple of 8");
  if (p.num_tokens == 0) return;
  const int threads = 256;
  const dim3 grid(static_cast<unsigned>(p.num_tokens), static_cast<unsigned>((p.d / 8 + threads - 1) / threads));
  STRATOS_DISPATCH_16(p.dtype, T, "silu_mul", {
    silu_mul_kernel<T><<<grid, threads, 0, as_stream(stream)>>>(static_cast<const T*>(p.x), static_cast<T*>(p.out), p.d);
  });
  cuda_check_launch("silu_mul");
}

}  // namespace stratos
