// Widening cast to f32 (bf16/f16 in), optional row gather and scale: one block row per output
// row (split over blockIdx.y for long rows), 8 elements per thread with 16-byte loads where rows
// are 16-byte aligned, scalar loads otherwise.
#include <algorithm>
#include "common.cuh"
#include "stratos/ops/cast_f32.h"

namespace stratos {

template <typename T>
__global__ void cast_f32_kernel(CastF32Params p, bool vec) {
  const int64_t r = blockIdx.x;
  const int64_t src = p.rows ? static_cast<int64_t>(p.rows[r]) : r;
  const T* x = static_cast<const T*>(p.x) + src * p.cols;
  float* o = p.out + r * p.cols;
  const bool bad = src < 0 || src >= p.src_rows;
  const float scale = p.scale;
  if (vec) {
    const int64_t nvec = p.cols / 8;
    // Bound: nvec / (gridDim.y * blockDim.x) + 1 iterations.
    for (int64_t v = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x; v < nvec; v += static_cast<int64_t>(gridDim.y) * blockDim.x) {
      float f[8];
      if (bad) {
#pragma unroll
        for (int j = 0; j < 8; ++j) f[j] = __int_as_float(0x7fc00000);
      } else {
        Vec16<T> xv;
        xv.load(x + v * 8);
        xv.to_f32(f);
#pragma unroll
        for (int j = 0; j < 8; ++j) f[j] *= scale;
      }
      float4* dst = reinterpret_cast<float4*>(o + v * 8);
      dst[0] = make_float4(f[0], f[1], f[2], f[3]);
      dst[1] = make_float4(f[4], f[5], f[6], f[7]);
    }
  } else {
    for (int64_t c = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x; c < p.cols; c += static_cast<int64_t>(gridDim.y) * blockDim.x) {
      o[c] = bad ? __int_as_float(0x7fc00000) : Elem<T>::to_f32(x[c]) * scale;
    }
  }
}

void cast_f32_cuda(const CastF32Params& p, void* stream) {
  STRATOS_CHECK(p.num_rows <= 0x7fffffff, "cast_f32", "too many rows for one launch");
  if (p.num_rows == 0 || p.cols == 0) return;
  const int threads = 256;
  // 16-byte vectors need cols % 8 == 0 and 16-byte aligned bases (then every row is aligned too).
  const bool vec = (p.cols & 7) == 0 && (reinterpret_cast<uintptr_t>(p.x) & 15) == 0 && (reinterpret_cast<uintptr_t>(p.out) & 15) == 0;
  const int64_t perThread = vec ? 8 : 1;
  const int64_t ySplit = std::min<int64_t>(65535, (p.cols / perThread + threads - 1) / threads);
  const dim3 grid(static_cast<unsigned>(p.num_rows), static_cast<unsigned>(std::max<int64_t>(ySplit, 1)));
  STRATOS_DISPATCH_16(p.dtype, T, "cast_f32", { cast_f32_kernel<T><<<grid, threads, 0, as_stream(stream)>>>(p, vec); });
  cuda_check_launch("cast_f32");
}

}  // namespace stratos
