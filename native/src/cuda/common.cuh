// Device-side helpers shared by the kernels: checked launches, typed 16-byte vectors and
// conversions, block reductions. Included only by .cu files.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <string>

#include "stratos/dtype.h"
#include "stratos/error.h"

namespace stratos {

#define STRATOS_CUDA(call)                                                                         \
  do {                                                                                             \
    cudaError_t err_ = (call);                                                                     \
    if (err_ != cudaSuccess)                                                                       \
      throw ::stratos::Error(std::string(#call) + " failed: " + cudaGetErrorString(err_));         \
  } while (0)

inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

void cuda_check_launch(const char* op);
void* cuda_workspace(size_t bytes, void* stream);
// SMs of the current device (queried once; 132, an H100/H200's count, if the query fails).
int cuda_sm_count();

// ---- element conversions
template <typename T> struct Elem;
template <> struct Elem<__nv_bfloat16> {
  static __device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }
  static __device__ __forceinline__ __nv_bfloat16 from_f32(float v) { return __float2bfloat16(v); }
};
template <> struct Elem<__half> {
  static __device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }
  static __device__ __forceinline__ __half from_f32(float v) { return __float2half(v); }
};
template <> struct Elem<__nv_fp8_e4m3> {
  static __device__ __forceinline__ float to_f32(__nv_fp8_e4m3 v) { return static_cast<float>(v); }
  static __device__ __forceinline__ __nv_fp8_e4m3 from_f32(float v) { return __nv_fp8_e4m3(v); }
};
template <> struct Elem<float> {
  static __device__ __forceinline__ float to_f32(float v) { return v; }
  static __device__ __forceinline__ float from_f32(float v) { return v; }
};

// 16 bytes of T, loaded and stored as one uint4.
template <typename T>
struct Vec16 {
  static constexpr int N = 16 / sizeof(T);
  union {
    uint4 raw;
    T v[N];
  };
  __device__ __forceinline__ void load(const T* p) { raw = *reinterpret_cast<const uint4*>(p); }
  __device__ __forceinline__ void load_nc(const T* p) { raw = __ldg(reinterpret_cast<const uint4*>(p)); }
  __device__ __forceinline__ void store(T* p) const { *reinterpret_cast<uint4*>(p) = raw; }
  __device__ __forceinline__ void to_f32(float* out) const {
#pragma unroll
    for (int i = 0; i < N; ++i) out[i] = Elem<T>::to_f32(v[i]);
  }
  __device__ __forceinline__ void from_f32(const float* in) {
#pragma unroll
    for (int i = 0; i < N; ++i) v[i] = Elem<T>::from_f32(in[i]);
  }
};

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block; every thread gets the result. `scratch` holds 32 floats.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read from a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < nwarps ? scratch[lane] : 0.0f;
  return warp_sum(v);
}

// Programmatic dependent launch (Hopper). A kernel launched with `pdl` (launch_kernel below) may
// start while the kernel before it in the stream still runs: before pdl_wait() it may read only what
// no earlier kernel writes (weights) and must write nothing; after it, every earlier kernel has
// finished and its writes are visible. pdl_launch_dependents() lets the next PDL kernel start once
// every block of this one has called it. Both are no-ops in a kernel launched normally.
__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
__device__ __forceinline__ void pdl_launch_dependents() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }

// A kernel launch, as a programmatic dependent of the stream's previous kernel when `pdl`.
template <typename... Params, typename... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, bool pdl,
                   Args... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdl ? 1 : 0;
  STRATOS_CUDA(cudaLaunchKernelEx(&cfg, kernel, static_cast<Params>(args)...));
}

// Rope's angle for rotated pair i of rot_dim dims at position pos, and the rotation of one pair.
// rope.cu and the attention kernel's fused form (paged_decode.cu) share them: the same bits.
__device__ __forceinline__ void rope_cos_sin(float pos, int i, int rot_dim, float theta, float& c, float& s) {
  const float inv_freq = powf(theta, -2.0f * static_cast<float>(i) / static_cast<float>(rot_dim));
  sincosf(__fmul_rn(pos, inv_freq), &s, &c);  // rounded, not fused into sincosf's argument reduction
}
// Rounded products and sum, never contracted into an FMA: written as x0 * c - x1 * s, the compiler
// may fuse either product into the subtraction, and may choose differently where the code around
// it differs (a suspect for the 7B greedy tokens of rope-in-attention leaving the rope kernel's after
// 29 of 128 though each op matched bit for bit in isolation). So also the CPU reference's arithmetic.
__device__ __forceinline__ float rope_first(float x0, float x1, float c, float s) { return __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s)); }
__device__ __forceinline__ float rope_second(float x0, float x1, float c, float s) { return __fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, s)); }

// Element d of kv head h at in-page offset `off` of page `page`, in a [numPages, numKvHeads,
// pageSize, headDim] cache (kv_write, rope's KV write, attention's fused KV write).
__device__ __forceinline__ int64_t kv_cache_offset(int64_t page, int h, int num_kv_heads, int64_t page_size, int64_t off,
                                                   int head_dim, int d) {
  return ((page * num_kv_heads + h) * page_size + off) * head_dim + d;
}

// Dispatch a 16-bit activation dtype to a template.
#define STRATOS_DISPATCH_16(dtype, T, op, ...)                                                     \
  do {                                                                                             \
    if ((dtype) == ::stratos::DType::BF16) {                                                       \
      using T = __nv_bfloat16;                                                                     \
      __VA_ARGS__;                                                                                 \
    } else if ((dtype) == ::stratos::DType::F16) {                                                 \
      using T = __half;                                                                            \
      __VA_ARGS__;                                                                                 \
    } else {                                                                                       \
      throw ::stratos::Error(std::string(op) + ": dtype must be bf16 or f16 on the GPU, got " +   \
                             ::stratos::dtype_name(dtype));                                        \
    }                                                                                              \
  } while (0)

}  // namespace stratos
