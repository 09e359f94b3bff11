// Fused GPU sampling: one block of 1024 threads per row, the row's weights in shared memory, no sort.
//
// Thread t holds tokens (j * 1024 + t) * 4 + c for j < VPT/4, c < 4 ("chunk" j = 4096 tokens).
// Semantics are in include/stratos/ops/sampling.h. Thresholds (top-k, top-p) are found by a
// histogram select over the 32-bit integer weights (one log-bucket pass, then
// 8-bit refinement passes; see threshold_search); the draw is an inverse CDF in vocabulary order
// found by chunk totals plus one block-wide exclusive scan. Everything after the exp is integer
// arithmetic, so a row's result depends only on its inputs, never on thread timing.
#include "common.cuh"
#include "stratos/ops/sampling.h"
#include "stratos/philox.h"

namespace stratos {

namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr float kWeightScale = 2147483648.0f;  // 2^31

__device__ __forceinline__ unsigned long long warp_sum_u64(unsigned long long v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Block-wide sums of N u64 values; every thread gets all N totals. One barrier per call: the
// scratch alternates between two halves, and a half is rewritten only after a later barrier.
template <int N>
struct BlockSum {
  unsigned long long (*red)[N][kWarps];  // [2][N][kWarps] in shared memory
  int parity = 0;
  __device__ __forceinline__ void run(unsigned long long (&v)[N]) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int i = 0; i < N; ++i) v[i] = warp_sum_u64(v[i]);
    if (lane == 0) {
#pragma unroll
      for (int i = 0; i < N; ++i) red[parity][i][warp] = v[i];
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < N; ++i) v[i] = warp_sum_u64(red[parity][i][lane]);
    parity ^= 1;
  }
};

// Threshold search. F(t) = sum over tokens with w >= max(t, lo) of (MASS ? w : 1); the result is
// the largest t with F(t) >= target (0 when F(lo) < target). F is a non-increasing step function
// that changes only at token weights, so t is always one of the row's weights.
//
// Pass 1 histograms every candidate by a log-scale bucket of w (256 buckets: the exponent and
// the next 3 bits; all w < 2^16 share bucket 0), which spreads even very wide rows well. The
// bucket holding the crossing is then refined 8 bits at a time (at most 4 more passes, usually
// 3), each pass touching only the tokens inside the current range. Histograms are integer
// shared-memory atomics (the mass is split into two 16-bit halves so u32 never overflows for a
// row of <= 32768 tokens), so the result is exact and independent of thread timing.
// When TARGET_FRAC, the target is floor(frac * F(lo)) (at least 1), with F(lo) from pass 1.
struct SearchSmem {
  uint32_t hi[256];
  uint32_t lo[256];
  unsigned long long above, target;
  uint32_t base;
  int width_bits;  // -1: no crossing (F(lo) < target)
};

__device__ __forceinline__ int log_bucket(uint32_t w) {
  const int e = 31 - __clz(w);
  return e < 3 ? static_cast<int>(w) : e * 8 + static_cast<int>((w >> (e - 3)) & 7u);
}

// Warp 0: find the largest bin D with above + sum_{d >= D} h[d] >= target; clears the histogram.
// Returns through ss (D in *d_out). Must be called by all lanes of warp 0 only.
template <bool MASS>
__device__ __forceinline__ void find_crossing(SearchSmem& ss, unsigned long long above, unsigned long long target,
                                              bool frac_target, double frac, int& d_out, unsigned long long& above_out, bool& none) {
  const int lane = threadIdx.x & 31;
  unsigned long long h[8];
  unsigned long long s = 0;
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int b = lane * 8 + j;
    h[j] = MASS ? (static_cast<unsigned long long>(ss.hi[b]) << 16) + ss.lo[b] : ss.lo[b];
    ss.hi[b] = 0;
    ss.lo[b] = 0;
    s += h[j];
  }
  // inclusive suffix sums over lanes
  unsigned long long S = s;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const unsigned long long n = __shfl_down_sync(0xffffffffu, S, o);
    if (lane + o < 32) S += n;
  }
  if (frac_target) {
    const unsigned long long total = __shfl_sync(0xffffffffu, S, 0);
    target = static_cast<unsigned long long>(frac * static_cast<double>(total));
    if (target < 1) target = 1;
  }
  const unsigned long long S_next = __shfl_down_sync(0xffffffffu, S, 1);
  const unsigned mask = __ballot_sync(0xffffffffu, above + S >= target);
  none = mask == 0;
  d_out = 0;
  above_out = above;
  if (!none) {
    const int L = 31 - __clz(static_cast<int>(mask));
    if (lane == L) {
      unsigned long long acc = above + (lane < 31 ? S_next : 0ull);
      int d = 0;
      bool found = false;
#pragma unroll
      for (int j = 7; j >= 0; --j) {
        if (!found) {
          if (acc + h[j] >= target) { d = lane * 8 + j; found = true; }
          else acc += h[j];
        }
      }
      d_out = d;
      above_out = acc;
    }
    d_out = __shfl_sync(0xffffffffu, d_out, L);
    above_out = __shfl_sync(0xffffffffu, above_out, L);
  }
  if (lane == 0) ss.target = target;
}

template <int VPT, bool MASS>
__device__ uint32_t threshold_search(const uint32_t* sw, uint32_t lo, unsigned long long target, bool frac_target, double frac,
                                     SearchSmem& ss) {
  const int tid = threadIdx.x;
  lo = max(lo, 1u);
  // ---- pass 1: log buckets over every token with w >= lo (the histogram is zero on entry).
  // Tokens with w < 2^16 all go to bucket 0 (the range [0, 2^16), refined like any other
  // bucket); they are summed in registers and added once per warp, which saves the atomics
  // for the (usually many) tiny weights.
  uint32_t small = 0;
#pragma unroll 8
  for (int i = 0; i < VPT; ++i) {
    const uint32_t w = sw[i * kThreads + tid];
    if (w >= lo) {
      if (w < 65536u) small += MASS ? w : 1u;  // <= 32 * 65535 per thread
      else {
        const int b = log_bucket(w);
        if (MASS) { atomicAdd(&ss.hi[b], w >> 16); atomicAdd(&ss.lo[b], w & 0xffffu); }
        else atomicAdd(&ss.lo[b], 1u);
      }
    }
  }
  small = __reduce_add_sync(0xffffffffu, small);  // <= 1024 * 65535 per warp, fits u32
  if ((tid & 31) == 0 && small) {
    if (MASS) { atomicAdd(&ss.hi[0], small >> 16); atomicAdd(&ss.lo[0], small & 0xffffu); }
    else atomicAdd(&ss.lo[0], small);
  }
  __syncthreads();
  if (tid < 32) {
    int d;
    unsigned long long above;
    bool none;
    find_crossing<MASS>(ss, 0ull, target, frac_target, frac, d, above, none);
    if (tid == 0) {
      if (none) ss.width_bits = -1;
      else if (d < 8) { ss.base = 0u; ss.width_bits = 16; }  // bucket 0 = [0, 2^16); 1..7 stay empty
      else {
        const int e = d >> 3;
        ss.base = static_cast<uint32_t>(8 + (d & 7)) << (e - 3);
        ss.width_bits = e - 3;
      }
      ss.above = above;
    }
  }
  __syncthreads();
  if (ss.width_bits < 0) return 0u;
  uint32_t base = ss.base;
  int wb = ss.width_bits;
  target = ss.target;
  unsigned long long above = ss.above;
  // ---- refine: 8 bits a pass inside [base, base + 2^wb)
  while (wb > 0) {
    const int sh = wb > 8 ? wb - 8 : 0;
    const uint32_t span = 1u << wb;
#pragma unroll 8
    for (int i = 0; i < VPT; ++i) {
      const uint32_t w = sw[i * kThreads + tid];
      const uint32_t off = w - base;
      if (w >= lo && w >= base && off < span) {
        const int b = static_cast<int>(off >> sh);
        if (MASS) { atomicAdd(&ss.hi[b], w >> 16); atomicAdd(&ss.lo[b], w & 0xffffu); }
        else atomicAdd(&ss.lo[b], 1u);
      }
    }
    __syncthreads();
    if (tid < 32) {
      int d;
      unsigned long long na;
      bool none;
      find_crossing<MASS>(ss, above, target, false, 0.0, d, na, none);
      if (tid == 0) { ss.base = base + (static_cast<uint32_t>(d) << sh); ss.above = na; }
    }
    __syncthreads();
    base = ss.base;
    above = ss.above;
    wb = sh;
  }
  __syncthreads();  // ss.base/above are rewritten by the next search
  return base;
}

template <int VPT>
__global__ void __launch_bounds__(kThreads, 1) sampling_kernel(SamplingParams p) {
  static_assert(VPT % 4 == 0 && VPT / 4 <= 8, "VPT");
  constexpr int CHUNKS = VPT / 4;
  __shared__ SearchSmem ss;
  __shared__ unsigned long long redc[2][CHUNKS][kWarps];
  __shared__ float fred[kWarps];
  __shared__ unsigned long long scan[kWarps];
  __shared__ int s_best_idx[kWarps];
  __shared__ float s_best_val[kWarps];

  const int64_t row = blockIdx.x;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t V = p.vocab;
  const float* x = p.logits + row * V;
  if (tid < 256) { ss.hi[tid] = 0; ss.lo[tid] = 0; }  // made visible by the barriers below

  // ---- load (out-of-vocabulary slots read as -inf)
  float xv[VPT];
  const bool vec = (V & 3) == 0;
#pragma unroll
  for (int j = 0; j < CHUNKS; ++j) {
    const int64_t idx = (static_cast<int64_t>(j) * kThreads + tid) * 4;
    if (vec && idx < V) {
      const float4 f = __ldg(reinterpret_cast<const float4*>(x + idx));
      xv[4 * j] = f.x; xv[4 * j + 1] = f.y; xv[4 * j + 2] = f.z; xv[4 * j + 3] = f.w;
    } else {
#pragma unroll
      for (int c = 0; c < 4; ++c) xv[4 * j + c] = idx + c < V ? __ldg(x + idx + c) : -INFINITY;
    }
  }
  bool bad = false;
  float mx = -INFINITY;
#pragma unroll
  for (int i = 0; i < VPT; ++i) {
    bad |= isnan(xv[i]) || xv[i] == INFINITY;
    mx = fmaxf(mx, xv[i]);
  }
  const float temp = p.temperature[row];
  const bool any_bad = __syncthreads_or(bad);
  mx = warp_max(mx);
  if (lane == 0) fred[warp] = mx;
  __syncthreads();
  mx = warp_max(fred[lane]);
  int status = kSampleOk;
  if (any_bad) status = kSampleInvalidLogits;
  else if (mx == -INFINITY) status = kSampleAllMasked;
  else if (!(temp >= 0.0f) || isinf(temp)) status = kSampleInvalidParams;
  if (status != kSampleOk) {
    if (tid == 0) { p.tokens[row] = 0; p.logprobs[row] = __int_as_float(0x7fc00000); p.status[row] = status; }
    return;  // uniform across the block
  }
  // log-sum-exp of the raw logits, for the reported logprob
  float raw = 0.0f;
#pragma unroll
  for (int i = 0; i < VPT; ++i) raw += expf(xv[i] - mx);
  raw = warp_sum(raw);
  __syncthreads();  // fred is reused
  if (lane == 0) fred[warp] = raw;
  __syncthreads();
  const float log_z = mx + logf(warp_sum(fred[lane]));

  if (temp == 0.0f) {  // greedy: max value, lowest index on ties
    float bv = -INFINITY;
    int bi = 0x7fffffff;
#pragma unroll
    for (int j = 0; j < CHUNKS; ++j)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int idx = (j * kThreads + tid) * 4 + c;
        const float v = xv[4 * j + c];
        if (idx < V && (v > bv || (v == bv && idx < bi))) { bv = v; bi = idx; }
      }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
      if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
    }
    if (lane == 0) { s_best_val[warp] = bv; s_best_idx[warp] = bi; }
    __syncthreads();
    if (warp == 0) {
      bv = s_best_val[lane];
      bi = s_best_idx[lane];
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
        const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
        if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
      }
      if (lane == 0) { p.tokens[row] = bi; p.logprobs[row] = bv - log_z; p.status[row] = kSampleOk; }
    }
    return;
  }

  // ---- integer weights, kept in shared memory: sw[i * 1024 + tid] is this thread's value i
  extern __shared__ uint32_t sw[];
#pragma unroll
  for (int i = 0; i < VPT; ++i) sw[i * kThreads + tid] = static_cast<uint32_t>(expf((xv[i] - mx) / temp) * kWeightScale);

  BlockSum<CHUNKS> bsc{redc};
  uint32_t thresh = 1;
  const float min_p = p.min_p[row];
  if (min_p > 0.0f) thresh = max(thresh, static_cast<uint32_t>(fminf(min_p, 1.0f) * kWeightScale));
  const int32_t top_k = p.top_k[row];
  __syncthreads();  // sw complete
  if (top_k > 0 && top_k < V) thresh = max(thresh, threshold_search<VPT, false>(sw, 0u, static_cast<unsigned long long>(top_k), false, 0.0, ss));
  const float top_p = p.top_p[row];
  if (top_p < 1.0f) thresh = max(thresh, threshold_search<VPT, true>(sw, thresh, 0ull, true, static_cast<double>(fmaxf(top_p, 0.0f)), ss));

  // ---- draw: chunk totals, then a scan inside the chosen chunk
  unsigned long long csum[CHUNKS] = {};
#pragma unroll
  for (int j = 0; j < CHUNKS; ++j)
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      const uint32_t w = sw[(4 * j + c) * kThreads + tid];
      csum[j] += w >= thresh ? w : 0u;
    }
  unsigned long long mine[CHUNKS];
#pragma unroll
  for (int j = 0; j < CHUNKS; ++j) mine[j] = csum[j];
  bsc.run(csum);
  unsigned long long total = 0;
#pragma unroll
  for (int j = 0; j < CHUNKS; ++j) total += csum[j];
  unsigned long long r = mulhi_u64(philox_u64(p.seeds[row], p.offsets[row]), total);
  int chosen = 0;
  unsigned long long my = 0;
  {
    bool found = false;
#pragma unroll
    for (int j = 0; j < CHUNKS; ++j) {
      if (!found) {
        if (r < csum[j]) { chosen = j; found = true; my = mine[j]; }
        else r -= csum[j];
      }
    }
  }
  // exclusive scan of `my` over threads
  unsigned long long incl = my;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const unsigned long long n = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += n;
  }
  if (lane == 31) scan[warp] = incl;
  __syncthreads();
  unsigned long long before = 0;
  for (int i = 0; i < warp; ++i) before += scan[i];
  const unsigned long long excl = before + incl - my;
  if (my > 0 && r >= excl && r < excl + my) {
    unsigned long long acc = excl;
    int token = 0;
#pragma unroll
    for (int j = 0; j < CHUNKS; ++j) {
      if (j == chosen) {
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const uint32_t w = sw[(4 * j + c) * kThreads + tid];
          const uint32_t wi = w >= thresh ? w : 0u;
          if (token == 0 && wi > 0 && r < acc + wi) token = (j * kThreads + tid) * 4 + c + 1;  // +1: found
          acc += wi;
        }
      }
    }
    token -= 1;
    p.tokens[row] = token;
    p.logprobs[row] = __ldg(x + token) - log_z;
    p.status[row] = kSampleOk;
  }
}

template <int VPT>
void launch(const SamplingParams& p, dim3 grid, cudaStream_t s) {
  const size_t smem = static_cast<size_t>(VPT) * kThreads * sizeof(uint32_t);  // the row's weights
  static bool configured = false;
  if (!configured) {
    STRATOS_CUDA(cudaFuncSetAttribute(sampling_kernel<VPT>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    configured = true;
  }
  sampling_kernel<VPT><<<grid, kThreads, smem, s>>>(p);
}

}  // namespace

void sampling_cuda(const SamplingParams& p, void* stream) {
  STRATOS_CHECK(p.vocab > 0 && p.vocab <= kSamplingMaxVocabCuda, "sampling", "vocab must be in [1, 32768] on the GPU");
  if (p.batch == 0) return;
  const dim3 grid(static_cast<unsigned>(p.batch));
  auto s = as_stream(stream);
  if (p.vocab <= 8192) launch<8>(p, grid, s);
  else if (p.vocab <= 16384) launch<16>(p, grid, s);
  else launch<32>(p, grid, s);
  cuda_check_launch("sampling");
}

}  // namespace stratos
