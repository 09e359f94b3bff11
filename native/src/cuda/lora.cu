// Multi-LoRA shrink and expand over a batch mixing adapters (slots) of different ranks.
// shrink: a block per (segment, kShrinkRanks rank rows, token chunk); its 8 warps split inDim, each
//   accumulating every rank row of the block for an 8-token tile, so a tile of x is read once per
//   kShrinkRanks rows (it was once per row, by one warp walking all of inDim: latency-bound, ~35 us
//   a launch at 128 tokens on an H100, run10-h100-7) and the partial sums meet in shared memory.
// expand: one thread per (segment, output column, token chunk): B row in 16-byte pieces, y from shared memory.
// Token chunks (grid.z): a long segment (a prefill on one adapter) is split into kTokTile-token
// chunks (one tile each: the most blocks) spread over grid.z, so its time no longer grows with
// tokens / adapters on one block.
// grid.z is sized from the token count (the host does not know segment lengths) and capped so
// segments x chunks stays near kTargetSegChunkBlocks; blocks stride over chunks by gridDim.z and
// a block whose chunk starts past its segment's end does nothing. Per-token grouping keeps grid.z = 1.
#include "common.cuh"
#include "stratos/ops/lora.h"

namespace stratos {

namespace {

constexpr int kTokTile = 8;  // tokens of a tile, and of a grid.z chunk
constexpr int kShrinkWarps = 8;  // warps of a shrink block, each over an eighth of inDim (more warps in flight: the loads are latency-bound)
constexpr int kShrinkRanks = 4;  // rank rows of a shrink block
constexpr int64_t kTargetSegChunkBlocks = 1024;  // cap on grid.x * grid.z (bounds the idle blocks)

// grid.z for a launch: enough chunks for the longest possible segment (all tokens), but at most
// kTargetSegChunkBlocks / segs (blocks loop over further chunks), at least 1; 1 per-token.
unsigned token_chunks(int64_t num_tokens, int64_t segs, bool segmented) {
  if (!segmented) return 1u;
  const int64_t need = (num_tokens + kTokTile - 1) / kTokTile;
  int64_t cap = kTargetSegChunkBlocks / segs;
  if (cap < 1) cap = 1;
  if (cap > 65535) cap = 65535;
  return static_cast<unsigned>(need < cap ? (need < 1 ? 1 : need) : cap);
}

__device__ __forceinline__ void seg_range(const int32_t* starts, int seg, int& t0, int& t1) {
  if (starts) { t0 = starts[seg]; t1 = starts[seg + 1]; }
  else { t0 = seg; t1 = seg + 1; }
}

// x: [numTokens, inDim]; a: [numSlots, maxRank, inDim]; y: [numTokens, maxRank] f32 (rows past
// the slot's rank, and segments without a slot, get zeros).
template <typename T>
__global__ void __launch_bounds__(kShrinkWarps * 32) lora_shrink_kernel(
    const T* __restrict__ x, const T* __restrict__ a, const int32_t* __restrict__ ranks,
    const int32_t* __restrict__ seg_starts, const int32_t* __restrict__ seg_slots, float* __restrict__ y,
    int in_dim, int max_rank, int num_slots) {
  __shared__ float s_part[kShrinkWarps][kShrinkRanks][kTokTile];
  const int seg = blockIdx.x;
  const int r0 = blockIdx.y * kShrinkRanks;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  int t0, t1;
  seg_range(seg_starts, seg, t0, t1);
  const int slot = seg_slots[seg];
  const int rank = slot >= 0 && slot < num_slots ? ranks[slot] : 0;
  const int rows = min(kShrinkRanks, rank - r0);  // rank rows this block computes (<= 0: zeros only)
  const T* arow = a + (static_cast<int64_t>(slot < 0 ? 0 : slot) * max_rank + r0) * in_dim;
  const int nvec = in_dim / 8;
  const int per_warp = (nvec + kShrinkWarps - 1) / kShrinkWarps;
  const int c0 = warp * per_warp, c1 = min(nvec, c0 + per_warp);
  // tb and te depend on the block only, so every thread reaches each __syncthreads.
  for (int tb = t0 + static_cast<int>(blockIdx.z) * kTokTile; tb < t1; tb += static_cast<int>(gridDim.z) * kTokTile) {
    const int te = min(tb + kTokTile, t1);
    float acc[kShrinkRanks][kTokTile];
#pragma unroll
    for (int j = 0; j < kShrinkRanks; ++j)
#pragma unroll
      for (int i = 0; i < kTokTile; ++i) acc[j][i] = 0.0f;
    if (rows > 0) {
#pragma unroll 2
      for (int c = c0 + lane; c < c1; c += 32) {
        float af[kShrinkRanks][8];
#pragma unroll
        for (int j = 0; j < kShrinkRanks; ++j) {
          Vec16<T> av;
          if (j < rows) av.load_nc(arow + static_cast<int64_t>(j) * in_dim + c * 8);
          else av.raw = make_uint4(0, 0, 0, 0);
          av.to_f32(af[j]);
        }
#pragma unroll
        for (int i = 0; i < kTokTile; ++i) {
          if (tb + i < te) {
            Vec16<T> xv;
            xv.load_nc(x + static_cast<int64_t>(tb + i) * in_dim + c * 8);
            float xf[8];
            xv.to_f32(xf);
#pragma unroll
            for (int j = 0; j < kShrinkRanks; ++j)
#pragma unroll
              for (int e = 0; e < 8; ++e) acc[j][i] = fmaf(xf[e], af[j][e], acc[j][i]);
          }
        }
      }
    }
#pragma unroll
    for (int j = 0; j < kShrinkRanks; ++j)
#pragma unroll
      for (int i = 0; i < kTokTile; ++i) {
        const float v = warp_sum(acc[j][i]);
        if (lane == 0) s_part[warp][j][i] = v;
      }
    __syncthreads();
    if (threadIdx.x < kShrinkRanks * kTokTile) {
      const int j = threadIdx.x / kTokTile, i = threadIdx.x % kTokTile;
      float v = 0.0f;
#pragma unroll
      for (int w = 0; w < kShrinkWarps; ++w) v += s_part[w][j][i];
      if (tb + i < te && r0 + j < max_rank) y[static_cast<int64_t>(tb + i) * max_rank + r0 + j] = v;
    }
    __syncthreads();
  }
}

// y: [numTokens, maxRank] f32; b: [numSlots, outDim, maxRank]; out: [numTokens, outDim] (+=).
template <typename T>
__global__ void lora_expand_kernel(const float* __restrict__ y, const T* __restrict__ b, const int32_t* __restrict__ ranks,
                                   const float* __restrict__ scales, const int32_t* __restrict__ seg_starts,
                                   const int32_t* __restrict__ seg_slots, T* out, int out_dim, int max_rank, int num_slots) {
  extern __shared__ float sy[];  // [kTokTile][maxRank]
  const int seg = blockIdx.x;
  const int n = blockIdx.y * blockDim.x + threadIdx.x;
  int t0, t1;
  seg_range(seg_starts, seg, t0, t1);
  const int slot = seg_slots[seg];
  if (slot < 0 || slot >= num_slots) return;  // uniform across the block
  const int rank = ranks[slot];
  const float scale = scales[slot];
  const T* brow = b + (static_cast<int64_t>(slot) * out_dim + n) * max_rank;
  // tb and te depend on the block only, so every thread reaches each __syncthreads.
  for (int tb = t0 + static_cast<int>(blockIdx.z) * kTokTile; tb < t1; tb += static_cast<int>(gridDim.z) * kTokTile) {
    const int te = min(tb + kTokTile, t1);
    __syncthreads();
    for (int i = threadIdx.x; i < kTokTile * max_rank; i += blockDim.x) {
      const int tt = i / max_rank, rr = i % max_rank;
      sy[i] = (tb + tt < te && rr < rank) ? y[static_cast<int64_t>(tb + tt) * max_rank + rr] : 0.0f;
    }
    __syncthreads();
    if (n >= out_dim) continue;
    float acc[kTokTile];
#pragma unroll
    for (int i = 0; i < kTokTile; ++i) acc[i] = 0.0f;
    for (int rc = 0; rc < rank; rc += 8) {
      Vec16<T> bv;
      bv.load_nc(brow + rc);
      float bf[8];
      bv.to_f32(bf);
#pragma unroll
      for (int i = 0; i < kTokTile; ++i)
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[i] = fmaf(sy[i * max_rank + rc + e], rc + e < rank ? bf[e] : 0.0f, acc[i]);
    }
#pragma unroll
    for (int i = 0; i < kTokTile; ++i) {
      if (tb + i < te) {
        T* o = out + static_cast<int64_t>(tb + i) * out_dim + n;
        *o = Elem<T>::from_f32(Elem<T>::to_f32(*o) + scale * acc[i]);
      }
    }
  }
}

}  // namespace

void lora_shrink_cuda(const LoraShrinkParams& p, void* stream) {
  STRATOS_CHECK(p.in_dim % 8 == 0, "lora_shrink", "inDim must be a multiple of 8");
  const int64_t segs = p.seg_starts ? p.num_segs : p.num_tokens;
  if (segs == 0 || p.num_tokens == 0) return;
  const dim3 grid(static_cast<unsigned>(segs), static_cast<unsigned>((p.max_rank + kShrinkRanks - 1) / kShrinkRanks),
                  token_chunks(p.num_tokens, segs, p.seg_starts != nullptr));
  STRATOS_DISPATCH_16(p.dtype, T, "lora_shrink", {
    lora_shrink_kernel<T><<<grid, kShrinkWarps * 32, 0, as_stream(stream)>>>(
        static_cast<const T*>(p.x), static_cast<const T*>(p.a), p.ranks, p.seg_starts, p.seg_slots, p.y,
        static_cast<int>(p.in_dim), static_cast<int>(p.max_rank), static_cast<int>(p.num_slots));
  });
  cuda_check_launch("lora_shrink");
}

void lora_expand_cuda(const LoraExpandParams& p, void* stream) {
  STRATOS_CHECK(p.max_rank % 8 == 0 && p.max_rank <= 128, "lora_expand", "maxRank must be a multiple of 8, <= 128");
  const int64_t segs = p.seg_starts ? p.num_segs : p.num_tokens;
  if (segs == 0 || p.num_tokens == 0) return;
  const int threads = 256;
  const dim3 grid(static_cast<unsigned>(segs), static_cast<unsigned>((p.out_dim + threads - 1) / threads),
                  token_chunks(p.num_tokens, segs, p.seg_starts != nullptr));
  const size_t smem = static_cast<size_t>(kTokTile) * p.max_rank * sizeof(float);
  STRATOS_DISPATCH_16(p.dtype, T, "lora_expand", {
    lora_expand_kernel<T><<<grid, threads, smem, as_stream(stream)>>>(
        p.y, static_cast<const T*>(p.b), p.ranks, p.scales, p.seg_starts, p.seg_slots, static_cast<T*>(p.out),
        static_cast<int>(p.out_dim), static_cast<int>(p.max_rank), static_cast<int>(p.num_slots));
  });
  cuda_check_launch("lora_expand");
}

}  // namespace stratos
