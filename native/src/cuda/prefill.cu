// Prefill / chunked-prefill attention over the paged cache, FlashAttention-2 style on tensor cores
// (mma.sync m16n8k16, bf16 or f16 in, f32 accumulate).
//
// One block per (query head, tile of BM=64 queries, sequence); 4 warps, each owning 16 query rows.
// K/V tiles of BN=64 keys are gathered out of the pages with cp.async into a double-buffered,
// XOR-swizzled shared-memory ring (the next tile loads while this one is multiplied). S = Q K^T
// and O += P V run on tensor cores; P never leaves registers (its accumulator layout is reused as
// the A operand). Causal masking touches only the tiles that cross the diagonal. Query tiles are
// ordered heaviest first so the causal tail does not straggle.
//
// On an H100/H200 with an sm_90a build, head dim 128 runs the warp-specialized kernel of
// prefill_ws.cuh instead (a TMA producer warp, two wgmma consumer warpgroups taking turns on the
// tensor cores; 128-query x 128-key tiles; same masking, softmax and paging rules; 2x faster than
// this kernel on the 2048-token benchmark); prefill_wgmma.cuh's one-warpgroup wgmma kernel stays
// as a measured alternative. This kernel serves head dim 64 and every other build. See
// prefill_kernel_choice().
#include <cuda.h>  // CUtensorMap (the TMA prefill kernel); the encoder comes from the runtime's driver entry point

#include <cstdlib>
#include <string>
#include <type_traits>

#include "common.cuh"
#include "stratos/ops/prefill.h"

#ifndef STRATOS_SM90A
#define STRATOS_SM90A 0  // set by CMake when the CUDA architectures include 90a
#endif

namespace stratos {

namespace {

constexpr int BN = 64;
constexpr int kMmaWarps = 4;  // the mma.sync kernel: 4 warps of 16 query rows (8 measured no faster)
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool pred) {
  const int bytes = pred ? 16 : 0;  // 0: fill the 16 bytes with zeros
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}

template <typename T> struct Mma;
template <> struct Mma<__nv_bfloat16> {
  static __device__ __forceinline__ void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
};
template <> struct Mma<__half> {
  static __device__ __forceinline__ void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
};

// Element offset of (row, 16-byte chunk) in a swizzled [rows][HEAD_DIM] tile: chunks are XORed
// with row % 8 so the 8 rows an ldmatrix reads fall in 8 different bank groups.
template <int HEAD_DIM>
__device__ __forceinline__ int swz(int row, int chunk) {
  return row * HEAD_DIM + ((chunk ^ (row & 7)) << 3);
}

__device__ __forceinline__ float fast_exp2(float x) {  // ex2.approx: 2^x, -inf -> 0
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// ---- The steps both kernels share. A thread holds two query rows (row_a and row_a + 8) of the S
// and O accumulators in the mma.sync m16n8 layout: acc[n][j] is row j / 2, column
// n * 8 + (lane % 4) * 2 + j % 2 of n-tile n (a wgmma accumulator holds the same per warp).

// Masks the S tile of keys [key0, key0 + BN): keys after a row's query position (causal) or past
// the sequence. Only tiles that cross the diagonal or the end need it.
template <int NTILES>
__device__ __forceinline__ void mask_scores(float (&sacc)[NTILES][4], int key0, int first_q_pos, const int (&qpos)[2], int kvlen,
                                            int lane) {
  const bool needs_mask = key0 + BN - 1 > first_q_pos || key0 + BN > kvlen;
  if (needs_mask) {
#pragma unroll
    for (int n = 0; n < NTILES; ++n) {
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int key = key0 + n * 8 + (lane & 3) * 2 + (j & 1);
        if (key > qpos[j >> 1] || key >= kvlen) sacc[n][j] = -INFINITY;
      }
    }
  }
}

// Online softmax of row r (0 or 1) over one S tile (4 threads share a row): updates the row's
// running max m (log2 units) and sum l, turns its scores into P = 2^(S * scale_log2 - m) and
// returns the factor the row's O must be scaled by. The scale into log2 units is folded into the
// exponent's FMA (scale > 0, so the maximum of raw scores is the maximum of scaled ones).
template <int NTILES>
__device__ __forceinline__ float softmax_row(float (&sacc)[NTILES][4], int r, float& m, float& l, float scale_log2) {
  float mx = -INFINITY;
#pragma unroll
  for (int n = 0; n < NTILES; ++n) mx = fmaxf(mx, fmaxf(sacc[n][2 * r], sacc[n][2 * r + 1]));
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
  const float m_new = fmaxf(m, mx * scale_log2);  // running max in log2 units
  const float m_use = m_new == -INFINITY ? 0.0f : m_new;  // a fully masked row so far
  const float corr = fast_exp2(m - m_use);
  float sum = 0.0f;
#pragma unroll
  for (int n = 0; n < NTILES; ++n) {
    sacc[n][2 * r] = fast_exp2(fmaf(sacc[n][2 * r], scale_log2, -m_use));
    sacc[n][2 * r + 1] = fast_exp2(fmaf(sacc[n][2 * r + 1], scale_log2, -m_use));
    sum += sacc[n][2 * r] + sacc[n][2 * r + 1];
  }
  sum += __shfl_xor_sync(0xffffffffu, sum, 1);
  sum += __shfl_xor_sync(0xffffffffu, sum, 2);
  l = l * corr + sum;
  m = m_new;
  return corr;
}

// k-step kc of O += P V takes P straight from the S accumulators: keys kc*16 .. kc*16+15 of this
// thread's rows, packed to 16-bit pairs, are the A fragment (m16n8k16, or wgmma's from registers).
template <typename T, int NTILES>
__device__ __forceinline__ void pack_p(uint32_t (&a)[4], const float (&sacc)[NTILES][4], int kc) {
  a[0] = Mma<T>::pack(sacc[2 * kc][0], sacc[2 * kc][1]);
  a[1] = Mma<T>::pack(sacc[2 * kc][2], sacc[2 * kc][3]);
  a[2] = Mma<T>::pack(sacc[2 * kc + 1][0], sacc[2 * kc + 1][1]);
  a[3] = Mma<T>::pack(sacc[2 * kc + 1][2], sacc[2 * kc + 1][3]);
}

// Normalizes this thread's two rows of O and stores those that exist.
template <typename T, int HEAD_DIM>
__device__ __forceinline__ void store_rows(const float (&o)[HEAD_DIM / 8][4], const float (&l)[2], T* __restrict__ out, int q0,
                                           int qi_a, int qlen, int num_heads, int h, int lane) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int qi = qi_a + r * 8;
    if (qi >= qlen) continue;
    const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
    T* dst = out + ((static_cast<int64_t>(q0) + qi) * num_heads + h) * HEAD_DIM + (lane & 3) * 2;
#pragma unroll
    for (int d = 0; d < HEAD_DIM / 8; ++d) {
      const uint32_t packed = Mma<T>::pack(o[d][2 * r] * inv, o[d][2 * r + 1] * inv);
      *reinterpret_cast<uint32_t*>(dst + d * 8) = packed;
    }
  }
}

template <typename T, int HEAD_DIM>
__global__ void __launch_bounds__(kMmaWarps * 32) prefill_kernel(
    const T* __restrict__ q, const int32_t* __restrict__ cu_seqlens_q, const int32_t* __restrict__ seq_lens_kv,
    const int32_t* __restrict__ block_tables, const T* __restrict__ k_cache, const T* __restrict__ v_cache,
    T* __restrict__ out, int num_heads, int num_kv_heads, int page_shift, int max_pages_per_seq, int num_pages,
    float scale_log2) {
  constexpr int BM = 16 * kMmaWarps, kThreads = kMmaWarps * 32;
  constexpr int CHUNKS = HEAD_DIM / 8;  // 16-byte chunks per row
  constexpr int KSTEPS = HEAD_DIM / 16;
  constexpr int DTILES = HEAD_DIM / 8;
  constexpr int NTILES = BN / 8;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);  // [BM][HEAD_DIM]
  T* sK = sQ + BM * HEAD_DIM;              // [2][BN][HEAD_DIM]
  T* sV = sK + 2 * BN * HEAD_DIM;          // [2][BN][HEAD_DIM]

  const int h = blockIdx.x, s = blockIdx.z;
  const int q_tile = gridDim.y - 1 - blockIdx.y;  // heaviest (latest) tiles first
  const int q0 = cu_seqlens_q[s];
  const int qlen = cu_seqlens_q[s + 1] - q0;
  const int q_start = q_tile * BM;
  if (q_start >= qlen) return;
  const int kvlen = seq_lens_kv[s];
  const int ctx = kvlen - qlen;
  const int kvh = h / (num_heads / num_kv_heads);
  const int page_size = 1 << page_shift;
  const int32_t* table = block_tables + static_cast<int64_t>(s) * max_pages_per_seq;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;

  // Keys this block needs: up to the last query's position (causal), within kvlen.
  const int q_last = min(qlen, q_start + BM) - 1;
  const int kv_end = min(kvlen, ctx + q_last + 1);
  const int num_tiles = (kv_end + BN - 1) / BN;

  // ---- load the Q tile
  for (int i = tid; i < BM * CHUNKS; i += kThreads) {
    const int row = i / CHUNKS, chunk = i % CHUNKS;
    const int qi = q_start + row;
    const bool ok = qi < qlen;
    const T* src = q + ((static_cast<int64_t>(q0) + (ok ? qi : 0)) * num_heads + h) * HEAD_DIM + chunk * 8;
    cp_async16(smem_addr(sQ + swz<HEAD_DIM>(row, chunk)), src, ok);
  }
  auto load_kv = [&](int tile, int buf) {
    T* dk = sK + buf * BN * HEAD_DIM;
    T* dv = sV + buf * BN * HEAD_DIM;
    for (int i = tid; i < BN * CHUNKS; i += kThreads) {
      const int row = i / CHUNKS, chunk = i % CHUNKS;
      const int key = tile * BN + row;
      bool ok = key < kvlen;
      int page = ok ? table[key >> page_shift] : 0;
      if (page < 0 || page >= num_pages) { ok = false; page = 0; }
      const int64_t off = ((static_cast<int64_t>(page) * num_kv_heads + kvh) * page_size + (key & (page_size - 1))) *
                              HEAD_DIM + chunk * 8;
      cp_async16(smem_addr(dk + swz<HEAD_DIM>(row, chunk)), k_cache + (ok ? off : 0), ok);
      cp_async16(smem_addr(dv + swz<HEAD_DIM>(row, chunk)), v_cache + (ok ? off : 0), ok);
    }
  };
  if (num_tiles > 0) load_kv(0, 0);
  cp_async_commit();

  float o[DTILES][4];
#pragma unroll
  for (int d = 0; d < DTILES; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  uint32_t qf[KSTEPS][4];
  const int lrow = lane & 7, lmat = lane >> 3;  // ldmatrix: this lane addresses row lrow of matrix lmat
  // Query positions of this thread's two accumulator rows.
  const int row_a = warp * 16 + (lane >> 2);
  const int qpos[2] = {ctx + q_start + row_a, ctx + q_start + row_a + 8};
  const int first_q_pos = ctx + q_start;

  for (int tile = 0; tile < num_tiles; ++tile) {
    const int buf = tile & 1;
    if (tile + 1 < num_tiles) load_kv(tile + 1, buf ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    if (tile == 0) {
#pragma unroll
      for (int kk = 0; kk < KSTEPS; ++kk)
        ldmatrix_x4(qf[kk], smem_addr(sQ + swz<HEAD_DIM>(warp * 16 + lrow + (lmat & 1) * 8, kk * 2 + (lmat >> 1))));
    }
    const T* tk = sK + buf * BN * HEAD_DIM;
    const T* tv = sV + buf * BN * HEAD_DIM;

    // S = Q K^T for this warp's 16 rows x BN keys.
    float sacc[NTILES][4];
#pragma unroll
    for (int n = 0; n < NTILES; ++n) sacc[n][0] = sacc[n][1] = sacc[n][2] = sacc[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < KSTEPS; ++kk) {
#pragma unroll
      for (int np = 0; np < NTILES / 2; ++np) {
        uint32_t b[4];
        ldmatrix_x4(b, smem_addr(tk + swz<HEAD_DIM>(np * 16 + lrow + (lmat >> 1) * 8, kk * 2 + (lmat & 1))));
        Mma<T>::run(sacc[2 * np], qf[kk], b[0], b[1]);
        Mma<T>::run(sacc[2 * np + 1], qf[kk], b[2], b[3]);
      }
    }
    mask_scores(sacc, tile * BN, first_q_pos, qpos, kvlen, lane);
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const float corr = softmax_row(sacc, r, m[r], l[r], scale_log2);
#pragma unroll
      for (int d = 0; d < DTILES; ++d) { o[d][2 * r] *= corr; o[d][2 * r + 1] *= corr; }
    }
    // O += P V.
#pragma unroll
    for (int kc = 0; kc < BN / 16; ++kc) {
      uint32_t a[4];
      pack_p<T>(a, sacc, kc);
#pragma unroll
      for (int dp = 0; dp < DTILES / 2; ++dp) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, smem_addr(tv + swz<HEAD_DIM>(kc * 16 + lrow + (lmat & 1) * 8, dp * 2 + (lmat >> 1))));
        Mma<T>::run(o[2 * dp], a, b[0], b[1]);
        Mma<T>::run(o[2 * dp + 1], a, b[2], b[3]);
      }
    }
    __syncthreads();  // the next iteration's load overwrites the buffer just read
  }
  cp_async_wait<0>();
  store_rows<T, HEAD_DIM>(o, l, out, q0, q_start + row_a, qlen, num_heads, h, lane);
}

#include "prefill_wgmma.cuh"
#include "prefill_ws.cuh"

// Launches one of the kernels (they take the same arguments) over (heads, query tiles of bm, sequences).
// What every prefill kernel's launch shares: log2 of the page size, the kernel's shared-memory
// attributes (set once per kernel), and the grid (heads, query tiles of bm, sequences).
struct PrefillLaunch {
  int page_shift;
  dim3 grid;
};

template <auto kernel>
PrefillLaunch prepare_launch(const PrefillParams& p, int bm, size_t smem) {
  int page_shift = 0;
  while ((1 << page_shift) < p.page_size) ++page_shift;
  static bool configured = false;  // one per kernel
  if (!configured) {
    STRATOS_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    // Ask for the largest shared-memory carveout so two blocks fit on an SM (the carveout is a
    // hint; without it the driver may configure only enough for one).
    STRATOS_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
    configured = true;
  }
  const int q_tiles = static_cast<int>((p.max_q_len + bm - 1) / bm);
  STRATOS_CHECK(q_tiles <= 65535 && p.num_seqs <= 65535, "prefill", "too many query tiles or sequences for one launch");
  return {page_shift, dim3(static_cast<unsigned>(p.num_heads), static_cast<unsigned>(q_tiles), static_cast<unsigned>(p.num_seqs))};
}

// Every prefill kernel takes the same leading arguments; `extra` are a kernel's own (the
// warp-specialized kernel's tensor maps).
template <auto kernel, typename T, typename... Extra>
void launch_kernel(const PrefillParams& p, int bm, int threads, size_t smem, cudaStream_t stream, const Extra&... extra) {
  const PrefillLaunch l = prepare_launch<kernel>(p, bm, smem);
  kernel<<<l.grid, threads, smem, stream>>>(
      static_cast<const T*>(p.q), p.cu_seqlens_q, p.seq_lens_kv, p.block_tables, static_cast<const T*>(p.k_cache),
      static_cast<const T*>(p.v_cache), static_cast<T*>(p.out), static_cast<int>(p.num_heads),
      static_cast<int>(p.num_kv_heads), l.page_shift, static_cast<int>(p.max_pages_per_seq), static_cast<int>(p.num_pages),
      p.scale * kLog2e, extra...);
  cuda_check_launch("prefill");
}

template <typename T, int HEAD_DIM>
void launch(const PrefillParams& p, cudaStream_t stream) {
  constexpr int BM = 16 * kMmaWarps;
  const size_t smem = static_cast<size_t>(BM + 4 * BN) * HEAD_DIM * sizeof(T);
  launch_kernel<prefill_kernel<T, HEAD_DIM>, T>(p, BM, kMmaWarps * 32, smem, stream);
}

template <typename T, int NWG, int STAGES>
void launch_wgmma(const PrefillParams& p, cudaStream_t stream) {
  constexpr int BM = 64 * NWG;
  const size_t smem = static_cast<size_t>(BM + 2 * STAGES * BN) * 128 * sizeof(T) + 1024;  // + alignment slack
  launch_kernel<prefill_wgmma_kernel<T, NWG, STAGES>, T>(p, BM, NWG * 128, smem, stream);
}

// cuTensorMapEncodeTiled through the runtime (the addon does not link libcuda); null if absent.
using EncodeTiledFn = decltype(&cuTensorMapEncodeTiled);
EncodeTiledFn tensor_map_encoder() {
  static const EncodeTiledFn fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess) {
      cudaGetLastError();
      return static_cast<EncodeTiledFn>(nullptr);
    }
    return reinterpret_cast<EncodeTiledFn>(f);
  }();
  return fn;
}

// A tensor map over a paged cache viewed as [pages * kv heads][page_size][128] (16-bit elements),
// boxes of min(page_size, kn) rows x 64 columns, 128-byte swizzle. False if it cannot be encoded.
bool encode_cache_map(CUtensorMap* map, const void* cache, const PrefillParams& p, int kn) {
  const EncodeTiledFn enc = tensor_map_encoder();
  if (enc == nullptr) return false;
  const cuuint64_t dims[3] = {128, static_cast<cuuint64_t>(p.page_size), static_cast<cuuint64_t>(p.num_pages) * p.num_kv_heads};
  const cuuint64_t strides[2] = {128 * 2, static_cast<cuuint64_t>(p.page_size) * 128 * 2};
  const cuuint32_t box[3] = {64, static_cast<cuuint32_t>(p.page_size < kn ? p.page_size : kn), 1};
  const cuuint32_t elem_strides[3] = {1, 1, 1};
  const CUtensorMapDataType dt = p.dtype == DType::BF16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  return enc(map, dt, 3, const_cast<void*>(cache), dims, strides, box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
             CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

template <typename T, int KN, int STAGES, bool SPLIT, bool OVERLAP, bool TMA>
void launch_ws_kernel(const PrefillParams& p, cudaStream_t stream, const CUtensorMap& map_k, const CUtensorMap& map_v) {
  launch_kernel<prefill_ws_kernel<T, KN, STAGES, SPLIT, OVERLAP, TMA>, T>(p, kWsBM, kWsThreads, ws_smem_bytes(KN, STAGES), stream, map_k, map_v);
}

// The warp-specialized kernel; TMA needs page_size >= 8 and encodable tensor maps, and falls back
// to the cp.async producer otherwise.
template <typename T, int KN, int STAGES, bool SPLIT, bool OVERLAP, bool TMA = false>
void launch_ws(const PrefillParams& p, cudaStream_t stream) {
  CUtensorMap map_k{}, map_v{};
  if constexpr (TMA) {
    if (p.page_size >= 8 && encode_cache_map(&map_k, p.k_cache, p, KN) && encode_cache_map(&map_v, p.v_cache, p, KN)) {
      launch_ws_kernel<T, KN, STAGES, false, OVERLAP, true>(p, stream, map_k, map_v);
      return;
    }
  }
  launch_ws_kernel<T, KN, STAGES, SPLIT, OVERLAP, false>(p, stream, map_k, map_v);
}

// Which kernel runs head_dim 128 (STRATOS_PREFILL_KERNEL overrides the default for measurements):
//   "ws128s3t" (default): warp-specialized, 128-key tiles, 3-deep K/V ring, TMA producer (falls
//     back to the cp.async producer for page sizes below 8 or if a tensor map cannot be encoded);
//   "ws128s3to": the same with a consumer's softmax overlapping its own P V;
//   "ws128s3", "ws128s3o", "ws128s3k": cp.async producer (o: that overlap; k: separate K and V
//     barriers);
//   "wg1s2", "wg1s3", "wg2s3", "wg2s4": wgmma with NWG warpgroups per block, a STAGES-deep ring;
//   all of these need an sm_90a build and a compute capability 9.0 device;
//   "mma4": mma.sync, 4 warps (every build).
enum class PrefillKernel { Mma4, Wg1S2, Wg1S3, Wg2S3, Wg2S4, Ws128S3, Ws128S3K, Ws128S3O, Ws128S3T, Ws128S3TO };
constexpr PrefillKernel kDefaultWgmma = PrefillKernel::Ws128S3T;
bool wgmma_usable() {
#if STRATOS_SM90A
  static const bool v = [] {
    int dev = 0, major = 0, minor = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return false;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) return false;
    if (cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) return false;
    return major == 9 && minor == 0;
  }();
  return v;
#else
  return false;
#endif
}
PrefillKernel prefill_kernel_choice() {
  static const PrefillKernel v = [] {
    const char* e = std::getenv("STRATOS_PREFILL_KERNEL");
    const std::string k = e ? e : "";
    const bool wg = wgmma_usable();
    if (k == "mma4" || !wg) return PrefillKernel::Mma4;
    if (k == "wg1s2") return PrefillKernel::Wg1S2;
    if (k == "wg1s3") return PrefillKernel::Wg1S3;
    if (k == "wg2s3") return PrefillKernel::Wg2S3;
    if (k == "wg2s4") return PrefillKernel::Wg2S4;
    if (k == "ws128s3") return PrefillKernel::Ws128S3;
    if (k == "ws128s3k") return PrefillKernel::Ws128S3K;
    if (k == "ws128s3o") return PrefillKernel::Ws128S3O;
    if (k == "ws128s3t") return PrefillKernel::Ws128S3T;
    if (k == "ws128s3to") return PrefillKernel::Ws128S3TO;
    return kDefaultWgmma;
  }();
  return v;
}

}  // namespace

void prefill_cuda(const PrefillParams& p, void* stream) {
  STRATOS_CHECK(p.page_size > 0 && (p.page_size & (p.page_size - 1)) == 0, "prefill", "pageSize must be a power of two");
  STRATOS_CHECK(p.num_heads % p.num_kv_heads == 0, "prefill", "numHeads must be a multiple of numKvHeads");
  if (p.num_seqs == 0 || p.max_q_len == 0) return;
  auto s = as_stream(stream);
  const PrefillKernel kind = prefill_kernel_choice();
  if (p.head_dim == 128) {
    switch (kind) {
      case PrefillKernel::Wg1S2: STRATOS_DISPATCH_16(p.dtype, T, "prefill", (launch_wgmma<T, 1, 2>(p, s))); break;
      case PrefillKernel::Wg1S3: STRATOS_DISPATCH_16(p.dtype, T, "prefill", (launch_wgmma<T, 1, 3>(p, s))); break;
      case PrefillKernel::Wg2S3: STRATOS_DISPATCH_16(p.dtype, T, "prefill", (launch_wgmma<T, 2, 3>(p, s))); break;
      case PrefillKernel::Wg2S4: STRATOS_DISPATCH_16(p.dtype, T, "prefill", (launch_wgmma<T, 2, 4>(p, s))); break;
      case PrefillKernel::Ws128S3: STRATOS_DISPATCH_16(p.dtype, T, "prefill", (launch_ws<T, 128, 3, false, false>(p, s))); break;
      case PrefillKernel::Ws128S3K: STRATOS_DISPATCH_16(p.dtype, T, "prefill", (launch_ws<T, 128, 3, true, false>(p, s))); break;
      case PrefillKernel::Ws128S3O: STRATOS_DISPATCH_16(p.dtype, T, "prefill", (launch_ws<T, 128, 3, false, true>(p, s))); break;
      case PrefillKernel::Ws128S3T: STRATOS_DISPATCH_16(p.dtype, T, "prefill", (launch_ws<T, 128, 3, false, false, true>(p, s))); break;
      case PrefillKernel::Ws128S3TO: STRATOS_DISPATCH_16(p.dtype, T, "prefill", (launch_ws<T, 128, 3, false, true, true>(p, s))); break;
      default: STRATOS_DISPATCH_16(p.dtype, T, "prefill", (launch<T, 128>(p, s))); break;
    }
  } else if (p.head_dim == 64) {
    STRATOS_DISPATCH_16(p.dtype, T, "prefill", (launch<T, 64>(p, s)));
  } else {
    throw Error("prefill: headDim must be 64 or 128 on the GPU");
  }
}

}  // namespace stratos
