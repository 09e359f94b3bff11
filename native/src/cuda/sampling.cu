// Fused GPU sampling: one block of 1024 threads per row, the whole row in registers, no sort.
//
// Thread t holds tokens (j * 1024 + t) * 4 + c for j < VPT/4, c < 4 ("chunk" j = 4096 tokens).
// Semantics are in include/stratos/ops/sampling.h. Thresholds (top-k, top-p) are found by a
// radix search over the 32-bit integer weights, two bits per step (16 steps, one block
// reduction of 3 bucket sums each; each step visits only the tokens still in range); the draw is an inverse CDF in vocabulary order
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

// Largest t such that f(t) >= target, where f(t) = sum over tokens with w >= max(t, lo) of
// (MASS ? w : 1). f is non-increasing in t, so t's digits are fixed from the top, 2 bits a step.
// Each step visits only the tokens still inside the current range (a per-thread bit mask over
// the thread's VPT weights, kept in shared memory): tokens above the range are already counted
// in `above`, tokens below can no longer matter. After a few steps few tokens remain.
template <int VPT, bool MASS>
__device__ uint32_t radix_search(const uint32_t* sw, uint32_t lo, unsigned long long target, BlockSum<3>& bs) {
  const int tid = threadIdx.x;
  uint32_t live = 0;
#pragma unroll
  for (int i = 0; i < VPT; ++i) live |= (sw[i * kThreads + tid] >= max(lo, 1u) ? 1u : 0u) << i;
  unsigned long long prefix = 0, above = 0;
#pragma unroll 1
  for (int shift = 30; shift >= 0; shift -= 2) {
    unsigned long long b[3] = {0, 0, 0};  // buckets 1..3 of the range (bucket 0 needs no sum)
    for (uint32_t m = live; m; m &= m - 1) {
      const int i = __ffs(m) - 1;
      const uint32_t w = sw[i * kThreads + tid];
      const int d = static_cast<int>((w - prefix) >> shift);
      const unsigned long long v = MASS ? w : 1u;
      if (d == 1) b[0] += v;
      else if (d == 2) b[1] += v;
      else if (d == 3) b[2] += v;
    }
    bs.run(b);
    // f(prefix + d << shift) = above + sum of buckets >= d
    int best = 0;
    unsigned long long f = above + b[2];
    if (f >= target) best = 3;
    else {
      f += b[1];
      if (f >= target) best = 2;
      else {
        f += b[0];
        if (f >= target) best = 1;
      }
    }
    for (int d = best + 1; d <= 3; ++d) above += b[d - 1];
    uint32_t keep = 0;
    for (uint32_t m = live; m; m &= m - 1) {
      const int i = __ffs(m) - 1;
      const uint32_t w = sw[i * kThreads + tid];
      if (static_cast<int>((w - prefix) >> shift) == best) keep |= 1u << i;
    }
    live = keep;
    prefix += static_cast<unsigned long long>(best) << shift;
  }
  return static_cast<uint32_t>(prefix);
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

  // ---- integer weights, kept in shared memory: sw[i * 1024 + tid] is this thread's value i
  extern __shared__ uint32_t sw[];
#pragma unroll
  for (int i = 0; i < VPT; ++i) sw[i * kThreads + tid] = static_cast<uint32_t>(expf((xv[i] - mx) / temp) * kWeightScale);

  BlockSum<3> bs{red3};
  BlockSum<CHUNKS> bsc{redc};
  uint32_t thresh = 1;
  const float min_p = p.min_p[row];
  if (min_p > 0.0f) thresh = max(thresh, static_cast<uint32_t>(fminf(min_p, 1.0f) * kWeightScale));
  const int32_t top_k = p.top_k[row];
  if (top_k > 0 && top_k < V) thresh = max(thresh, radix_search<VPT, false>(sw, 0u, static_cast<unsigned long long>(top_k), bs));
  const float top_p = p.top_p[row];
  if (top_p < 1.0f) {
    unsigned long long acc[3] = {0, 0, 0};
#pragma unroll
    for (int i = 0; i < VPT; ++i) {
      const uint32_t w = sw[i * kThreads + tid];
      acc[0] += w >= thresh ? w : 0u;
    }
    bs.run(acc);
    unsigned long long target = static_cast<unsigned long long>(static_cast<double>(fmaxf(top_p, 0.0f)) * static_cast<double>(acc[0]));
    if (target < 1) target = 1;
    thresh = max(thresh, radix_search<VPT, true>(sw, thresh, target, bs));
  }

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
