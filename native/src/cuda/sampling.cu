// Fused GPU sampling: one block of 1024 threads per row, the whole row in registers, no sort.
//
// Thread t holds tokens (j * 1024 + t) * 4 + c for j < VPT/4, c < 4 ("chunk" j = 4096 tokens).
// Semantics are in include/stratos/ops/sampling.h. Thresholds (top-k, top-p) are found by a
// radix search over the 32-bit integer weights, two bits per step (16 steps, 3 candidate
// thresholds each, one block reduction per step); the draw is an inverse CDF in vocabulary order
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

// Largest t such that f(t) >= target, where f(t) = sum over kept tokens with w >= max(t, lo) of
// (MASS ? w : 1). f is non-increasing in t, so the digits of t are fixed from the top, 2 bits at a time.
template <int VPT, bool MASS, int NS>
__device__ uint32_t radix_search(const uint32_t (&w)[VPT], uint32_t lo, unsigned long long target, BlockSum<NS>& bs) {
  uint32_t prefix = 0;
#pragma unroll 1
  for (int shift = 30; shift >= 0; shift -= 2) {
    uint32_t cand[3];
#pragma unroll
    for (int d = 0; d < 3; ++d) cand[d] = max(prefix | (static_cast<uint32_t>(d + 1) << shift), lo);
    unsigned long long acc[NS];
#pragma unroll
    for (int i = 0; i < NS; ++i) acc[i] = 0;
#pragma unroll
    for (int i = 0; i < VPT; ++i) {
#pragma unroll
      for (int d = 0; d < 3; ++d) acc[d] += w[i] >= cand[d] ? (MASS ? w[i] : 1u) : 0u;
    }
    bs.run(acc);
    int best = 0;
#pragma unroll
    for (int d = 0; d < 3; ++d) if (acc[d] >= target) best = d + 1;
    prefix |= static_cast<uint32_t>(best) << shift;
  }
  return prefix;
}

template <int VPT>
__global__ void __launch_bounds__(kThreads, 1) sampling_kernel(SamplingParams p) {
  static_assert(VPT % 4 == 0 && VPT / 4 <= 8, "VPT");
  constexpr int CHUNKS = VPT / 4;
  __shared__ unsigned long long red3[2][3][kWarps];
  __shared__ unsigned long long redc[2][CHUNKS][kWarps];
  __shared__ float fred[kWarps];
  __shared__ unsigned long long scan[kWarps];
  __shared__ int s_best_idx[kWarps];
  __shared__ float s_best_val[kWarps];

  const int64_t row = blockIdx.x;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t V = p.vocab;
  const float* x = p.logits + row * V;

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

  // ---- integer weights
  uint32_t w[VPT];
#pragma unroll
  for (int i = 0; i < VPT; ++i) w[i] = static_cast<uint32_t>(expf((xv[i] - mx) / temp) * kWeightScale);

  BlockSum<3> bs{red3};
  BlockSum<CHUNKS> bsc{redc};
  uint32_t thresh = 1;
  const float min_p = p.min_p[row];
  if (min_p > 0.0f) thresh = max(thresh, static_cast<uint32_t>(fminf(min_p, 1.0f) * kWeightScale));
  const int32_t top_k = p.top_k[row];
  if (top_k > 0 && top_k < V) thresh = max(thresh, radix_search<VPT, false>(w, 0u, static_cast<unsigned long long>(top_k), bs));
  const float top_p = p.top_p[row];
  if (top_p < 1.0f) {
    unsigned long long acc[3] = {0, 0, 0};
#pragma unroll
    for (int i = 0; i < VPT; ++i) acc[0] += w[i] >= thresh ? w[i] : 0u;
    bs.run(acc);
    unsigned long long target = static_cast<unsigned long long>(static_cast<double>(fmaxf(top_p, 0.0f)) * static_cast<double>(acc[0]));
    if (target < 1) target = 1;
    thresh = max(thresh, radix_search<VPT, true>(w, thresh, target, bs));
  }

  // ---- draw: chunk totals, then a scan inside the chosen chunk
  unsigned long long csum[CHUNKS] = {};
#pragma unroll
  for (int j = 0; j < CHUNKS; ++j)
#pragma unroll
    for (int c = 0; c < 4; ++c) csum[j] += w[4 * j + c] >= thresh ? w[4 * j + c] : 0u;
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
          const uint32_t wi = w[4 * j + c] >= thresh ? w[4 * j + c] : 0u;
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

}  // namespace

void sampling_cuda(const SamplingParams& p, void* stream) {
  STRATOS_CHECK(p.vocab > 0 && p.vocab <= kSamplingMaxVocabCuda, "sampling", "vocab must be in [1, 32768] on the GPU");
  if (p.batch == 0) return;
  const dim3 grid(static_cast<unsigned>(p.batch));
  auto s = as_stream(stream);
  if (p.vocab <= 8192) sampling_kernel<8><<<grid, kThreads, 0, s>>>(p);
  else if (p.vocab <= 16384) sampling_kernel<16><<<grid, kThreads, 0, s>>>(p);
  else sampling_kernel<32><<<grid, kThreads, 0, s>>>(p);
  cuda_check_launch("sampling");
}

}  // namespace stratos
