// One-row linear layer (batch-1 decode) with its neighbours fused in: see stratos/ops/decode_gemv.h.
// cuBLAS reached 2.2-3.8 TB/s on the 7B decode shapes (engine/results/gpu-check run7) and each
// norm or SiLU-and-mul between them was a launch of its own; here a layer is one launch per weight
// matrix and, with PDL, each starts streaming its weights while the kernel before it finishes.
//
// Layout: a block owns a contiguous range of outputs and walks it in groups of G weight rows. Its
// 256 threads split each row's k/8 16-byte vectors (thread t takes vectors t, t + 256, ...: every
// warp load is 512 contiguous bytes), so a thread holds G x VPT vectors in registers; the next
// group's loads are issued before this group's reduction. x (after the prologue) lives in shared
// memory as T, rounded as the unfused rmsnorm stores it.
#include <algorithm>
#include "common.cuh"
#include "stratos/ops/decode_gemv.h"

namespace stratos {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

__device__ __forceinline__ uint4 load_streaming(const void* p) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "l"(p));
  return r;
}

template <typename T>
__device__ __forceinline__ float round_as(float v) {
  return Elem<T>::to_f32(Elem<T>::from_f32(v));
}

template <typename T>
struct GemvArgs {
  const T* x;
  const T* w;
  const T* g;  // norm weight or null
  T* out;
  int n, k, outs_per_block, epilogue;
  float eps;
  const char* prefetch;  // L2 prefetch range (DecodeGemvParams::l2_prefetch), null for none
  long long prefetch_bytes, prefetch_per_block;  // multiples of 16
};

// Bytes per bulk prefetch instruction: a block's share goes out as a few of these, one per thread.
constexpr long long kPrefetchChunk = 4096;

// This block's share of the L2 prefetch range, as bulk prefetches (the copy engine walks them;
// fire and forget: nothing waits for them, and the lines land in L2 while later kernels run).
template <typename T>
__device__ __forceinline__ void prefetch_share(const GemvArgs<T>& a) {
  const long long lo = static_cast<long long>(blockIdx.x) * a.prefetch_per_block;
  const long long hi = min(lo + a.prefetch_per_block, a.prefetch_bytes);
  for (long long off = lo + static_cast<long long>(threadIdx.x) * kPrefetchChunk; off < hi; off += kThreads * kPrefetchChunk) {
    const unsigned size = static_cast<unsigned>(min(kPrefetchChunk, hi - off));
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(a.prefetch + off), "r"(size) : "memory");
  }
}

// G weight rows per group; VPT vectors of 8 per thread and row (k <= 2048 VPT).
template <typename T, int VPT, int G>
__global__ void __launch_bounds__(kThreads) decode_gemv_kernel(GemvArgs<T> a) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* xs = reinterpret_cast<T*>(smem_raw);
  __shared__ float red[2][kWarps][G];
  __shared__ float scratch[32];
  const bool pair = a.epilogue == static_cast<int>(GemvEpilogue::kSiluPair);
  const int outs_per_group = pair ? G / 2 : G;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int nvec = a.k / 8;
  const int out0 = blockIdx.x * a.outs_per_block;
  const int out1 = min(out0 + a.outs_per_block, a.n);

  uint4 wv[G][VPT];
  // Weight row of slot r in the group that starts at output j (null past the block's outputs).
  auto load_group = [&](int j) {
#pragma unroll
    for (int r = 0; r < G; ++r) {
      const int o = pair ? (r < G / 2 ? r : r - G / 2) : r;
      const int row = (pair && r >= G / 2) ? a.n + j + o : j + o;
      const bool valid = j + o < out1;
#pragma unroll
      for (int i = 0; i < VPT; ++i) {
        const int v = tid + i * kThreads;
        wv[r][i] = (valid && v < nvec) ? load_streaming(a.w + static_cast<int64_t>(row) * a.k + v * 8) : make_uint4(0, 0, 0, 0);
      }
    }
  };

  if (out0 < out1) load_group(out0);  // weights only: allowed before the wait
  pdl_wait();

  // Prologue: x into shared memory, RMS-normalised when a norm weight is given.
  using V = Vec16<T>;
  if (a.g) {
    float sum_sq = 0.0f;
    for (int v = tid; v < nvec; v += kThreads) {
      V xv;
      xv.load(a.x + v * 8);
      float f[8];
      xv.to_f32(f);
#pragma unroll
      for (int e = 0; e < 8; ++e) sum_sq += f[e] * f[e];
    }
    const float inv_rms = 1.0f / sqrtf(block_sum(sum_sq, scratch) / static_cast<float>(a.k) + a.eps);
    for (int v = tid; v < nvec; v += kThreads) {
      V xv, gv;
      xv.load(a.x + v * 8);
      gv.load(a.g + v * 8);
      float f[8], gf[8];
      xv.to_f32(f);
      gv.to_f32(gf);
#pragma unroll
      for (int e = 0; e < 8; ++e) f[e] = f[e] * inv_rms * gf[e];
      xv.from_f32(f);
      xv.store(xs + v * 8);
    }
  } else {
    for (int v = tid; v < nvec; v += kThreads) reinterpret_cast<uint4*>(xs)[v] = reinterpret_cast<const uint4*>(a.x)[v];
  }
  __syncthreads();

  int parity = 0;
  for (int j = out0; j < out1; j += outs_per_group, parity ^= 1) {
    float acc[G];
#pragma unroll
    for (int r = 0; r < G; ++r) acc[r] = 0.0f;
#pragma unroll
    for (int i = 0; i < VPT; ++i) {
      const int v = tid + i * kThreads;
      if (v < nvec) {
        V xv;
        xv.load(xs + v * 8);
        float xf[8];
        xv.to_f32(xf);
#pragma unroll
        for (int r = 0; r < G; ++r) {
          V wvec;
          wvec.raw = wv[r][i];
          float wf[8];
          wvec.to_f32(wf);
#pragma unroll
          for (int e = 0; e < 8; ++e) acc[r] = fmaf(wf[e], xf[e], acc[r]);
        }
      }
    }
    if (j + outs_per_group < out1) load_group(j + outs_per_group);  // in flight during the reduction
    // The block's last weights are on their way: the next kernel may start (its blocks stream their
    // first weights during this one's tail). Triggered at the start instead, dependents crowded in
    // early and a 7B batch-1 step took 5.60 instead of 5.23 ms (H100).
    else pdl_launch_dependents();
#pragma unroll
    for (int r = 0; r < G; ++r) {
      const float s = warp_sum(acc[r]);
      if (lane == 0) red[parity][warp][r] = s;
    }
    // One barrier per group: red is double-buffered, and a reader of red[parity] passes the next
    // group's barrier before anyone writes red[parity] again.
    __syncthreads();
    if (tid < outs_per_group && j + tid < out1) {
      auto total = [&](int r) {
        float s = 0.0f;
#pragma unroll
        for (int w = 0; w < kWarps; ++w) s += red[parity][w][r];
        return round_as<T>(s);
      };
      const int o = j + tid;
      if (pair) {
        const float gt = total(tid), up = total(G / 2 + tid);
        a.out[o] = Elem<T>::from_f32(gt / (1.0f + expf(-gt)) * up);
      } else if (a.epilogue == static_cast<int>(GemvEpilogue::kAdd)) {
        a.out[o] = Elem<T>::from_f32(Elem<T>::to_f32(a.out[o]) + total(tid));
      } else {
        a.out[o] = Elem<T>::from_f32(total(tid));
      }
    }
  }
  // Then the next GEMV's weights into L2 (DRAM would idle through rope and attention otherwise).
  // After the loop, not at the trigger: there the weight registers are live and the prefetch
  // took the 7B down kernel from 80 to 128 registers (three blocks per SM to two).
  if (a.prefetch) prefetch_share(a);
}

template <typename T, int VPT>
void launch(const DecodeGemvParams& p, cudaStream_t stream) {
  constexpr int G = VPT == 1 ? 8 : VPT == 2 ? 4 : 2;
  const int outs_per_group = p.epilogue == GemvEpilogue::kSiluPair ? G / 2 : G;
  // About three blocks per SM (fewer where fewer fit), each a whole number of groups: every block
  // is resident at once, so the step ends with the block that has the most rows. Three beat two by
  // 0-6% and one by 2-19% on the 7B/13B shapes, four was mixed (H100, run10-h100-3/gemv.json).
  static const int resident = [] {
    int n = 0;
    STRATOS_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, decode_gemv_kernel<T, VPT, G>, kThreads, VPT * kThreads * 8 * sizeof(T)));
    return std::max(1, n);
  }();
  const int per_sm = p.blocks_per_sm > 0 ? p.blocks_per_sm : std::min(3, resident);
  const int64_t target_blocks = static_cast<int64_t>(per_sm) * cuda_sm_count();
  const int64_t per_block = (p.n + target_blocks - 1) / target_blocks;
  const int outs_per_block = static_cast<int>((per_block + outs_per_group - 1) / outs_per_group * outs_per_group);
  const unsigned blocks = static_cast<unsigned>((p.n + outs_per_block - 1) / outs_per_block);
  // Every block has outputs, so each takes an equal share of the prefetch (16-byte multiples).
  const long long prefetch_per_block = (p.l2_prefetch_bytes / 16 + blocks - 1) / blocks * 16;
  GemvArgs<T> a{static_cast<const T*>(p.x), static_cast<const T*>(p.weight), static_cast<const T*>(p.norm_weight),
                static_cast<T*>(p.out), static_cast<int>(p.n), static_cast<int>(p.k), outs_per_block,
                static_cast<int>(p.epilogue), p.eps, static_cast<const char*>(p.l2_prefetch),
                p.l2_prefetch ? p.l2_prefetch_bytes : 0, prefetch_per_block};
  launch_kernel(decode_gemv_kernel<T, VPT, G>, dim3(blocks), dim3(kThreads), static_cast<size_t>(p.k) * sizeof(T),
                stream, p.pdl, a);
}

}  // namespace

void decode_gemv_cuda(const DecodeGemvParams& p, void* stream) {
  STRATOS_CHECK(p.k % 8 == 0, "decode_gemv", "k must be a multiple of 8");
  STRATOS_CHECK(p.k <= 8 * kThreads * 8, "decode_gemv", "k must be <= 16384");
  STRATOS_CHECK(p.n < (1 << 30), "decode_gemv", "n must be < 2^30");
  STRATOS_CHECK(p.blocks_per_sm >= 0 && p.blocks_per_sm <= 8, "decode_gemv", "blocksPerSm must be in [0, 8]");
  STRATOS_CHECK(p.l2_prefetch_bytes >= 0 && p.l2_prefetch_bytes % 16 == 0 && reinterpret_cast<uintptr_t>(p.l2_prefetch) % 16 == 0,
                "decode_gemv", "the L2 prefetch range must be 16-byte aligned and a multiple of 16 bytes");
  if (p.n == 0) return;
  const int vpt = static_cast<int>((p.k / 8 + kThreads - 1) / kThreads);
  auto s = as_stream(stream);
  STRATOS_DISPATCH_16(p.dtype, T, "decode_gemv", {
    switch (vpt) {
      case 1: launch<T, 1>(p, s); break;
      case 2: launch<T, 2>(p, s); break;
      case 3: launch<T, 3>(p, s); break;
      case 4: launch<T, 4>(p, s); break;
      case 5: launch<T, 5>(p, s); break;
      case 6: launch<T, 6>(p, s); break;
      case 7: launch<T, 7>(p, s); break;
      default: launch<T, 8>(p, s); break;
    }
  });
  cuda_check_launch("decode_gemv");
}

}  // namespace stratos
