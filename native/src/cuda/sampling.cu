// Fused GPU sampling: one block of 1024 threads per row, the row's weights in shared memory, no sort.
//
// Thread t holds tokens (j * 1024 + t) * 4 + c for j < VPT/4, c < 4 ("chunk" j = 4096 tokens).
// Semantics are in include/stratos/ops/sampling.h. Thresholds (top-k, top-p) are found by a histogram select
// over the 32-bit integer weights (see threshold_search); the draw is an inverse CDF in
// vocabulary order found by chunk totals plus one block-wide exclusive scan. Everything after
// the exp is integer arithmetic, so a row's result depends only on its inputs, never on thread
// timing or on which block ran it.
#include "common.cuh"
#include "stratos/ops/sampling.h"
#include "stratos/philox.h"

namespace stratos {

namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr float kWeightScale = 2147483648.0f;  // 2^31

// ---------------------------------------------------------------- threshold search
// F(t) = sum over tokens with w >= max(t, lo) of (MASS ? w : 1); the result is the largest t with
// F(t) >= target (0 when F(lo) < target). F is a non-increasing step function that changes only at
// token weights, so t is always one of the row's weights.
//
// 1. One pass histograms every candidate into 2048 log-scale bins (the exponent and the next 7
//    bits, so a bin spans 1/128 of an octave; all w < 2^17 share bin 0, summed in registers).
// 2. A block-wide suffix scan over the bins (two bins per thread) finds the bin holding the
//    crossing and the mass above it.
// 3. A second pass gathers the members of that bin (for real logit rows a handful of tokens) into
//    a list; each listed weight c gets F(c) by a loop over the list, and the answer is the largest
//    c with F(c) >= target. If the bin holds more than kListCap tokens (ties, flat rows, a
//    crossing among the w < 2^17), the bin is refined 8 bits a pass instead (the general path).
// Histograms are integer shared-memory atomics (the mass split into 16-bit halves so u32 never
// overflows for a row of <= 32768 tokens), so the result is exact and independent of timing.
// When TARGET_FRAC, the target is floor(frac * F(lo)) (at least 1), with F(lo) from the scan.
constexpr int kBins = 2048;
constexpr int kListCap = 256;
constexpr uint32_t kSmallLimit = 1u << 17;  // w below this shares bin 0

struct SearchSmem {
  uint32_t hi[kBins];  // mass >> 16 (MASS) per bin
  uint32_t lo[kBins];  // mass & 0xffff (MASS) or count per bin
  unsigned long long warp_total[kWarps];
  uint32_t list[kListCap];
  uint32_t count;  // tokens gathered into list (may exceed kListCap: then the list is not used)
  uint32_t best;   // largest feasible listed weight
  unsigned long long above, target;
  uint32_t base;
  int bin;
};

// Adds v (MASS: a weight or a sum of weights, split into 16-bit halves; else a count) to bin b.
template <bool MASS>
__device__ __forceinline__ void bin_add(SearchSmem& ss, int b, uint32_t v) {
  if (MASS) { atomicAdd(&ss.hi[b], v >> 16); atomicAdd(&ss.lo[b], v & 0xffffu); }
  else atomicAdd(&ss.lo[b], v);
}
// What bin b holds (MASS: the mass; else the count).
template <bool MASS>
__device__ __forceinline__ unsigned long long bin_value(const SearchSmem& ss, int b) {
  return MASS ? (static_cast<unsigned long long>(ss.hi[b]) << 16) + ss.lo[b] : ss.lo[b];
}

// Bin of a weight w >= kSmallLimit: e = floor(log2 w) in [17, 31], 7 more bits; bins 128..2047.
__device__ __forceinline__ int log_bin(uint32_t w) {
  const int e = 31 - __clz(w);
  return (e - 16) * 128 + static_cast<int>((w >> (e - 7)) & 127u);
}
// [base, base + 2^width_bits) of a bin (bin 0: [0, 2^17)).
__device__ __forceinline__ void bin_range(int d, uint32_t& base, int& width_bits) {
  if (d < 128) { base = 0u; width_bits = 17; return; }
  const int e = d / 128 + 16;
  base = static_cast<uint32_t>(128 + (d & 127)) << (e - 7);
  width_bits = e - 7;
}

__device__ __forceinline__ unsigned long long warp_sum_u64(unsigned long long v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
// Inclusive suffix sum over the lanes of a warp.
__device__ __forceinline__ unsigned long long warp_suffix_u64(unsigned long long v, int lane) {
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const unsigned long long n = __shfl_down_sync(0xffffffffu, v, o);
    if (lane + o < 32) v += n;
  }
  return v;
}

// General path (rare): warp 0 finds the largest of 256 bins D with above + sum_{d >= D} h[d] >=
// target, and clears the bins it read. Called by all lanes of warp 0.
template <bool MASS>
__device__ __forceinline__ void find_crossing_256(SearchSmem& ss, unsigned long long above, unsigned long long target, int& d_out,
                                                  unsigned long long& above_out) {
  const int lane = threadIdx.x & 31;
  unsigned long long h[8];
  unsigned long long s = 0;
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int b = lane * 8 + j;
    h[j] = bin_value<MASS>(ss, b);
    ss.hi[b] = 0;
    ss.lo[b] = 0;
    s += h[j];
  }
  const unsigned long long S = warp_suffix_u64(s, lane);
  const unsigned long long S_next = __shfl_down_sync(0xffffffffu, S, 1);
  const unsigned mask = __ballot_sync(0xffffffffu, above + S >= target);
  d_out = 0;
  above_out = above;
  if (mask != 0) {  // always true here: the caller's range holds the crossing
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
}

template <int VPT, bool MASS>
__device__ uint32_t threshold_search(const uint32_t* sw, uint32_t lo, unsigned long long target, bool frac_target, double frac,
                                     SearchSmem& ss) {
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  lo = max(lo, 1u);
  // ---- pass 1: log bins over every token with w >= lo (the histogram is zero on entry; count and
  // best were reset at the end of the previous search).
  uint32_t small = 0;
#pragma unroll 8
  for (int i = 0; i < VPT; ++i) {
    const uint32_t w = sw[i * kThreads + tid];
    if (w >= lo) {
      if (w < kSmallLimit) small += MASS ? w : 1u;  // <= 32 * 2^17 per thread
      else {
        bin_add<MASS>(ss, log_bin(w), MASS ? w : 1u);
      }
    }
  }
  small = __reduce_add_sync(0xffffffffu, small);  // <= 1024 * 2^17 = 2^27 per warp
  if (lane == 0 && small) bin_add<MASS>(ss, 0, small);
  __syncthreads();
  // ---- block-wide suffix scan: thread t owns bins 2t and 2t + 1 (and clears them).
  const int b0 = 2 * tid;
  const unsigned long long h0 = bin_value<MASS>(ss, b0);
  const unsigned long long h1 = bin_value<MASS>(ss, b0 + 1);
  ss.hi[b0] = 0; ss.lo[b0] = 0; ss.hi[b0 + 1] = 0; ss.lo[b0 + 1] = 0;
  const unsigned long long s = h0 + h1;
  const unsigned long long S_warp = warp_suffix_u64(s, lane);  // bins >= b0 within this warp
  if (lane == 0) ss.warp_total[warp] = S_warp;  // lane 0 holds the warp's total
  __syncthreads();
  const unsigned long long W = warp_suffix_u64(ss.warp_total[lane], lane);  // warps >= lane
  const unsigned long long total = __shfl_sync(0xffffffffu, W, 0);
  const unsigned long long after = __shfl_sync(0xffffffffu, W, (warp + 1) & 31);
  const unsigned long long S_incl = S_warp + (warp < 31 ? after : 0ull);  // bins >= b0
  const unsigned long long S_next = S_incl - s;                            // bins >= b0 + 2
  if (frac_target) {
    target = static_cast<unsigned long long>(frac * static_cast<double>(total));
    if (target < 1) target = 1;
  }
  if (total < target) {  // uniform: no crossing
    __syncthreads();     // warp_total is rewritten by the next search
    return 0u;
  }
  if (S_incl >= target && S_next < target) {  // exactly one thread
    if (S_next + h1 >= target) { ss.bin = b0 + 1; ss.above = S_next; }
    else { ss.bin = b0; ss.above = S_next + h1; }
  }
  __syncthreads();
  const int d = ss.bin;
  const unsigned long long above = ss.above;
  uint32_t base;
  int wb;
  bin_range(d, base, wb);
  const uint32_t span = 1u << wb;
  // ---- pass 2: gather the crossing bin's members.
#pragma unroll 8
  for (int i = 0; i < VPT; ++i) {
    const uint32_t w = sw[i * kThreads + tid];
    if (w >= lo && w - base < span && w >= base) {
      const uint32_t slot = atomicAdd(&ss.count, 1u);
      if (slot < kListCap) ss.list[slot] = w;
    }
  }
  __syncthreads();
  const uint32_t n = ss.count;
  uint32_t result;
  if (n <= kListCap) {
    // F(c) for each listed weight c, exact: above + the listed weights (or count) >= c.
    uint32_t cand = 0;
    if (tid < static_cast<int>(n)) {
      const uint32_t c = ss.list[tid];
      unsigned long long f = above;
      for (uint32_t j = 0; j < n; ++j) {  // n <= kListCap
        const uint32_t v = ss.list[j];
        f += v >= c ? (MASS ? v : 1u) : 0u;
      }
      cand = f >= target ? c : 0u;
    }
    if (tid < static_cast<int>((n + 31) & ~31u)) {
      cand = __reduce_max_sync(0xffffffffu, cand);
      if (lane == 0 && cand) atomicMax(&ss.best, cand);
    }
    __syncthreads();
    result = ss.best;
  } else {
    // ---- general path: refine [base, base + 2^wb) 8 bits a pass over the whole row.
    unsigned long long ab = above;
    while (wb > 0) {  // at most 3 passes (wb <= 24)
      const int sh = wb > 8 ? wb - 8 : 0;
      const uint32_t sp = 1u << wb;
#pragma unroll 8
      for (int i = 0; i < VPT; ++i) {
        const uint32_t w = sw[i * kThreads + tid];
        const uint32_t off = w - base;
        if (w >= lo && w >= base && off < sp) {
          bin_add<MASS>(ss, static_cast<int>(off >> sh), MASS ? w : 1u);
        }
      }
      __syncthreads();
      if (tid < 32) {
        int dd;
        unsigned long long na;
        find_crossing_256<MASS>(ss, ab, target, dd, na);
        if (tid == 0) { ss.base = base + (static_cast<uint32_t>(dd) << sh); ss.above = na; }
      }
      __syncthreads();
      base = ss.base;
      ab = ss.above;
      wb = sh;
    }
    result = base;
  }
  __syncthreads();  // every thread has read count, best, bin, base, above
  if (tid == 0) { ss.count = 0; ss.best = 0; }
  return result;
}

// ---------------------------------------------------------------- the kernel
template <int VPT>
__device__ __forceinline__ void load_row(float (&xv)[VPT], const float* x, int64_t V, int tid) {
  constexpr int CHUNKS = VPT / 4;
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
}

template <int VPT>
__global__ void __launch_bounds__(kThreads, 1) sampling_kernel(SamplingParams p) {
  static_assert(VPT % 4 == 0 && VPT / 4 <= 8, "VPT");
  constexpr int CHUNKS = VPT / 4;
  __shared__ SearchSmem ss;
  __shared__ uint32_t red_hi[CHUNKS][kWarps], red_lo[CHUNKS][kWarps];
  __shared__ float fmax_w[kWarps], fsum_w[kWarps];
  __shared__ unsigned long long scan[kWarps];
  __shared__ int s_best_idx[kWarps];
  __shared__ float s_best_val[kWarps];
  extern __shared__ uint32_t sw[];  // the row's weights: sw[i * 1024 + tid] is this thread's value i

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t V = p.vocab;
  for (int i = tid; i < kBins; i += kThreads) { ss.hi[i] = 0; ss.lo[i] = 0; }
  if (tid == 0) { ss.count = 0; ss.best = 0; }  // made visible by the barriers below

  // (A persistent variant that kept the next row's logits in registers during the search was
  // measured slower on the H200: at 64 registers per thread they spill.)
  const int64_t row = blockIdx.x;
  const float* x = p.logits + row * V;
  float xv[VPT];
  load_row<VPT>(xv, x, V, tid);
  // ---- invalid values and the row maximum (out-of-vocabulary slots hold -inf)
  bool bad = false;
  float mx = -INFINITY;
#pragma unroll
  for (int i = 0; i < VPT; ++i) {
    bad |= isnan(xv[i]) || xv[i] == INFINITY;
    mx = fmaxf(mx, xv[i]);
  }
  mx = warp_max(mx);
  if (lane == 0) fmax_w[warp] = mx;
  const bool any_bad = __syncthreads_or(bad);  // also publishes fmax_w
  mx = warp_max(fmax_w[lane]);
  const float temp = p.temperature[row];
  int status = kSampleOk;
  if (any_bad) status = kSampleInvalidLogits;
  else if (mx == -INFINITY) status = kSampleAllMasked;
  else if (!(temp >= 0.0f) || isinf(temp)) status = kSampleInvalidParams;
  if (status != kSampleOk) {  // uniform across the block
    if (tid == 0) { p.tokens[row] = 0; p.logprobs[row] = __int_as_float(0x7fc00000); p.status[row] = status; }
    return;
  }

  if (temp == 0.0f) {  // greedy: max value, lowest index on ties
    float raw = 0.0f;
    float bv = -INFINITY;
    int bi = 0x7fffffff;
#pragma unroll
    for (int j = 0; j < CHUNKS; ++j)
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int idx = (j * kThreads + tid) * 4 + c;
        const float v = xv[4 * j + c];
        raw += expf(v - mx);
        if (idx < V && (v > bv || (v == bv && idx < bi))) { bv = v; bi = idx; }
      }
    raw = warp_sum(raw);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
      if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
    }
    if (lane == 0) { s_best_val[warp] = bv; s_best_idx[warp] = bi; fsum_w[warp] = raw; }
    __syncthreads();
    if (warp == 0) {
      bv = s_best_val[lane];
      bi = s_best_idx[lane];
      const float log_z = mx + logf(warp_sum(fsum_w[lane]));
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

  // ---- integer weights into shared memory, and the log-sum-exp of the raw logits (for the
  // logprob). With temperature 1 the weight's exp is the log-sum-exp's term (x / 1 == x).
  float raw = 0.0f;
  if (temp == 1.0f) {
#pragma unroll
    for (int i = 0; i < VPT; ++i) {
      const float e = expf(xv[i] - mx);
      raw += e;
      sw[i * kThreads + tid] = static_cast<uint32_t>(e * kWeightScale);
    }
  } else {
#pragma unroll
    for (int i = 0; i < VPT; ++i) {
      raw += expf(xv[i] - mx);
      sw[i * kThreads + tid] = static_cast<uint32_t>(expf((xv[i] - mx) / temp) * kWeightScale);
    }
  }
  raw = warp_sum(raw);
  if (lane == 0) fsum_w[warp] = raw;
  uint32_t thresh = 1;
  const float min_p = p.min_p[row];
  if (min_p > 0.0f) thresh = max(thresh, static_cast<uint32_t>(fminf(min_p, 1.0f) * kWeightScale));
  const int32_t top_k = p.top_k[row];
  const float top_p = p.top_p[row];
  __syncthreads();  // sw and fsum_w complete
  const float log_z = mx + logf(warp_sum(fsum_w[lane]));
  if (top_k > 0 && top_k < V) thresh = max(thresh, threshold_search<VPT, false>(sw, 0u, static_cast<unsigned long long>(top_k), false, 0.0, ss));
  if (top_p < 1.0f) thresh = max(thresh, threshold_search<VPT, true>(sw, thresh, 0ull, true, static_cast<double>(fmaxf(top_p, 0.0f)), ss));

  // ---- draw: chunk totals (16-bit halves so warp and block sums stay in u32), then a scan
  // inside the chosen chunk.
  uint32_t chi[CHUNKS], clo[CHUNKS];
#pragma unroll
  for (int j = 0; j < CHUNKS; ++j) {
    chi[j] = 0;
    clo[j] = 0;
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      const uint32_t w = sw[(4 * j + c) * kThreads + tid];
      const uint32_t wi = w >= thresh ? w : 0u;
      chi[j] += wi >> 16;
      clo[j] += wi & 0xffffu;
    }
  }
#pragma unroll
  for (int j = 0; j < CHUNKS; ++j) {
    const uint32_t wh = __reduce_add_sync(0xffffffffu, chi[j]);  // <= 32 * 4 * 2^15
    const uint32_t wl = __reduce_add_sync(0xffffffffu, clo[j]);  // <= 32 * 4 * 2^16
    if (lane == 0) { red_hi[j][warp] = wh; red_lo[j][warp] = wl; }
  }
  __syncthreads();
  unsigned long long csum[CHUNKS];
  unsigned long long total = 0;
#pragma unroll
  for (int j = 0; j < CHUNKS; ++j) {
    const uint32_t bh = __reduce_add_sync(0xffffffffu, red_hi[j][lane]);  // <= 2^27
    const uint32_t bl = __reduce_add_sync(0xffffffffu, red_lo[j][lane]);  // <= 2^28
    csum[j] = (static_cast<unsigned long long>(bh) << 16) + bl;
    total += csum[j];
  }
  unsigned long long r = mulhi_u64(philox_u64(p.seeds[row], p.offsets[row]), total);
  int chosen = 0;
  {
    bool found = false;
#pragma unroll
    for (int j = 0; j < CHUNKS; ++j) {
      if (!found) {
        if (r < csum[j]) { chosen = j; found = true; }
        else r -= csum[j];
      }
    }
  }
  // this thread's kept weights in the chosen chunk, then an exclusive scan of their sum over threads
  uint32_t wk[4];
  unsigned long long my = 0;
#pragma unroll
  for (int c = 0; c < 4; ++c) {
    const uint32_t w = sw[(4 * chosen + c) * kThreads + tid];
    wk[c] = w >= thresh ? w : 0u;
    my += wk[c];
  }
  unsigned long long incl = my;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const unsigned long long n = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += n;
  }
  if (lane == 31) scan[warp] = incl;
  __syncthreads();
  const unsigned long long before = warp_sum_u64(lane < warp ? scan[lane] : 0ull);
  const unsigned long long excl = before + incl - my;
  if (my > 0 && r >= excl && r < excl + my) {
    unsigned long long acc = excl;
    int token = -1;
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      if (token < 0 && wk[c] > 0 && r < acc + wk[c]) token = (chosen * kThreads + tid) * 4 + c;
      acc += wk[c];
    }
    p.tokens[row] = token;
    p.logprobs[row] = __ldg(x + token) - log_z;
    p.status[row] = kSampleOk;
  }
}

template <int VPT>
void launch(const SamplingParams& p, cudaStream_t s) {
  const size_t smem = static_cast<size_t>(VPT) * kThreads * sizeof(uint32_t);  // the row's weights
  static bool configured = false;
  if (!configured) {
    STRATOS_CUDA(cudaFuncSetAttribute(sampling_kernel<VPT>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    configured = true;
  }
  STRATOS_CHECK(p.batch <= 0x7fffffff, "sampling", "batch too large for one launch");
  sampling_kernel<VPT><<<dim3(static_cast<unsigned>(p.batch)), kThreads, smem, s>>>(p);
}

}  // namespace

void sampling_cuda(const SamplingParams& p, void* stream) {
  STRATOS_CHECK(p.vocab > 0 && p.vocab <= kSamplingMaxVocabCuda, "sampling", "vocab must be in [1, 32768] on the GPU");
  if (p.batch == 0) return;
  auto s = as_stream(stream);
  if (p.vocab <= 8192) launch<8>(p, s);
  else if (p.vocab <= 16384) launch<16>(p, s);
  else launch<32>(p, s);
  cuda_check_launch("sampling");
}

}  // namespace stratos
