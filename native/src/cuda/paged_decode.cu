// Paged decode attention, split over the context as in flash-decoding.
//
// Kernel 1 (paged_decode_kernel): one block per (query head, sequence, partition of the context).
// The block's threads form GROUPS lane groups; a group of LANES threads holds one token's K row
// (16 bytes per thread), so each group runs its own online softmax over the tokens it visits and
// no block-wide barrier sits in the main loop. Each group keeps UNROLL tokens' K and V loads in
// flight. At the end the groups are merged through shared memory, and the block writes either the
// final row (one partition) or a partial (normalized output, max, sum) for kernel 2.
// Kernel 2 (paged_decode_reduce_kernel) merges the partitions of each (sequence, head).
//
// Blocks of consecutive query heads share one KV head under GQA and run side by side, so the
// repeated K/V reads of a group hit L2.
#include <cfloat>

#include "common.cuh"
#include "stratos/ops/paged_decode.h"

namespace stratos {

namespace {

constexpr int kThreads = 128;
constexpr int kUnroll = 4;
constexpr float kLog2e = 1.4426950408889634f;

template <typename Q, typename KV, int HEAD_DIM>
struct DecodeCfg {
  static constexpr int ELEMS = 16 / static_cast<int>(sizeof(KV));  // per thread per token
  static constexpr int LANES = HEAD_DIM / ELEMS;                     // threads per token
  static constexpr int GROUPS = kThreads / LANES;                    // tokens in flight per step
  static_assert(LANES >= 1 && LANES <= 32 && (LANES & (LANES - 1)) == 0, "lanes must be a power of two <= 32");
  static_assert(kThreads >= HEAD_DIM, "the merge uses one thread per output dim");
};

// Merges the `used` partitions of one (sequence, head) row into out (dim d of it). Loads go
// through L2 (__ldcg): in the fused path the partials were written by other blocks.
template <typename Q, int HEAD_DIM>
__device__ __forceinline__ void merge_partitions(const float* part_out, const float* part_ml, Q* out, int64_t row,
                                                 int num_parts, int used, int d, float v_scale) {
  float mm = -INFINITY;
  for (int i = 0; i < used; ++i) mm = fmaxf(mm, __ldcg(part_ml + (row * num_parts + i) * 2));
  float wsum = 0.0f, o = 0.0f;
  for (int i = 0; i < used; ++i) {
    const float w = __ldcg(part_ml + (row * num_parts + i) * 2 + 1) * exp2f(__ldcg(part_ml + (row * num_parts + i) * 2) - mm);
    wsum += w;
    o += w * __ldcg(part_out + (row * num_parts + i) * HEAD_DIM + d);
  }
  out[row * HEAD_DIM + d] = Elem<Q>::from_f32(wsum > 0.0f ? o / wsum * v_scale : 0.0f);
}

// Rope on a lane group's slices of one head (the fused form): a lane holds ELEMS consecutive dims,
// its NeoX partner (dim +- HEAD_DIM / 2) is LANES / 2 lanes away. The same arithmetic as
// rope_kernel, rounded to T as rope stores it.
template <typename T, int ELEMS, int LANES, int HEAD_DIM>
__device__ __forceinline__ void rope_slice(float (&x)[ELEMS], int lane, float pos, float theta) {
  const bool first = lane < LANES / 2;
#pragma unroll
  for (int e = 0; e < ELEMS; ++e) {
    const float other = __shfl_xor_sync(0xffffffffu, x[e], LANES / 2, LANES);
    float cs, sn;
    rope_cos_sin(pos, (lane * ELEMS + e) % (HEAD_DIM / 2), HEAD_DIM, theta, cs, sn);
    const float x0 = first ? x[e] : other, x1 = first ? other : x[e];
    x[e] = Elem<T>::to_f32(Elem<T>::from_f32(first ? rope_first(x0, x1, cs, sn) : rope_second(x0, x1, cs, sn)));
  }
}

// q: [numSeqs, numHeads, HEAD_DIM]; caches: [numPages, numKvHeads, pageSize, HEAD_DIM];
// block_tables: [numSeqs, maxPagesPerSeq]; seq_lens: [numSeqs];
// out (one partition): [numSeqs, numHeads, HEAD_DIM];
// part_out: [numSeqs, numHeads, numParts, HEAD_DIM] f32, part_ml: [numSeqs, numHeads, numParts, 2] f32.
// ROPE_NEW: the fused rope form (k_new given) is a separate instantiation: its extra state cost the
// plain kernel 61 -> 88 registers and 21% of its speed at batch 16 (run10-h100-6) when it was a runtime branch.
template <typename Q, typename KV, int HEAD_DIM, bool ROPE_NEW>
__global__ void __launch_bounds__(kThreads) paged_decode_kernel(
    const Q* __restrict__ q, const KV* __restrict__ k_cache, const KV* __restrict__ v_cache,
    const int32_t* __restrict__ block_tables, const int32_t* __restrict__ seq_lens, Q* __restrict__ out,
    float* __restrict__ part_out, float* __restrict__ part_ml, int num_heads, int num_kv_heads, int page_shift,
    int max_pages_per_seq, int num_pages, int partition_tokens, int num_parts, float qk_scale_log2, float v_scale,
    int* __restrict__ counters, const Q* __restrict__ k_new, const Q* __restrict__ v_new, float rope_theta) {
  using Cfg = DecodeCfg<Q, KV, HEAD_DIM>;
  constexpr int ELEMS = Cfg::ELEMS, LANES = Cfg::LANES, GROUPS = Cfg::GROUPS;
  pdl_launch_dependents();
  pdl_wait();  // q, the tables and the workspace (read by the previous layer's reduce) are the previous kernels'
  const int h = blockIdx.x, s = blockIdx.y, part = blockIdx.z;
  const int tid = threadIdx.x, g = tid / LANES, lane = tid % LANES;
  const int len = seq_lens[s];
  const int start = part * partition_tokens;
  const int end = min(len, start + partition_tokens);
  const int64_t out_row = (static_cast<int64_t>(s) * num_heads + h) * HEAD_DIM;
  // A sequence whose context fits one partition is written here, whatever the grid's partition
  // count (sized for the longest sequence, or for a CUDA graph's maximum): the result then does
  // not depend on the other sequences' lengths. The reduce kernel skips such rows.
  const bool direct = num_parts == 1 || len <= partition_tokens;
  if (start >= end) {
    if (direct && part == 0 && tid < HEAD_DIM) out[out_row + tid] = Elem<Q>::from_f32(0.0f);
    return;  // partitions past the end are ignored by the reduce kernel
  }
  const int kvh = h / (num_heads / num_kv_heads);
  const int page_size = 1 << page_shift;
  const int32_t* table = block_tables + static_cast<int64_t>(s) * max_pages_per_seq;

  // This thread's slice of q, pre-scaled so scores are in log2 units.
  float qv[ELEMS];
  {
    const Q* qp = q + out_row + lane * ELEMS;
#pragma unroll
    for (int e = 0; e < ELEMS; ++e) qv[e] = Elem<Q>::to_f32(qp[e]);
  }
  // Fused rope (k_new given; KV is Q): q and the newest token's k rotated, that token's k and v
  // taken from k_new / v_new instead of the cache, and written there by one block of its partition.
  const int newest = len - 1;
  Vec16<KV> k_newest, v_newest;
  if constexpr (ROPE_NEW && sizeof(KV) == sizeof(Q)) {
    const float pos = static_cast<float>(newest);
    rope_slice<Q, ELEMS, LANES, HEAD_DIM>(qv, lane, pos, rope_theta);
    const int64_t row = (static_cast<int64_t>(s) * num_kv_heads + kvh) * HEAD_DIM + lane * ELEMS;
    float kf[ELEMS];
#pragma unroll
    for (int e = 0; e < ELEMS; ++e) kf[e] = Elem<Q>::to_f32(k_new[row + e]);
    rope_slice<Q, ELEMS, LANES, HEAD_DIM>(kf, lane, pos, rope_theta);
    k_newest.from_f32(kf);
    v_newest.load(reinterpret_cast<const KV*>(v_new) + row);
    const int32_t page = table[newest >> page_shift];
    if (newest >= start && newest < end && h % (num_heads / num_kv_heads) == 0 && g == 0 && page >= 0 && page < num_pages) {
      const int64_t off = kv_cache_offset(page, kvh, num_kv_heads, page_size, newest & (page_size - 1), HEAD_DIM, lane * ELEMS);
      k_newest.store(const_cast<KV*>(k_cache) + off);
      v_newest.store(const_cast<KV*>(v_cache) + off);
    }
  }
#pragma unroll
  for (int e = 0; e < ELEMS; ++e) qv[e] *= qk_scale_log2;
  float acc[ELEMS];
#pragma unroll
  for (int e = 0; e < ELEMS; ++e) acc[e] = 0.0f;
  float m = -INFINITY, l = 0.0f;

  const int64_t head_stride = static_cast<int64_t>(page_size) * HEAD_DIM;
  // The loop bound is uniform across the block (the shuffles below need every lane).
  for (int base = start; base < end; base += GROUPS * kUnroll) {
    Vec16<KV> kvec[kUnroll], vvec[kUnroll];
    bool valid[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int t = base + g + u * GROUPS;
      valid[u] = t < end;
      int page = valid[u] ? table[t >> page_shift] : 0;
      if (page < 0 || page >= num_pages) { valid[u] = false; page = 0; }  // never read outside the cache
      const int64_t off = (static_cast<int64_t>(page) * num_kv_heads + kvh) * head_stride +
                          static_cast<int64_t>(t & (page_size - 1)) * HEAD_DIM + lane * ELEMS;
      if (ROPE_NEW && valid[u] && t == newest) {
        kvec[u] = k_newest;  // not in the cache yet (another block of this launch may be writing it)
        vvec[u] = v_newest;
      } else if (valid[u]) {
        kvec[u].load_nc(k_cache + off);
        vvec[u].load_nc(v_cache + off);
      } else {
        kvec[u].raw = make_uint4(0, 0, 0, 0);
        vvec[u].raw = make_uint4(0, 0, 0, 0);
      }
    }
    float sc[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      float kf[ELEMS];
      kvec[u].to_f32(kf);
      float dot = 0.0f;
#pragma unroll
      for (int e = 0; e < ELEMS; ++e) dot = fmaf(qv[e], kf[e], dot);
#pragma unroll
      for (int o = LANES / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
      sc[u] = valid[u] ? dot : -INFINITY;
    }
    float m_new = m;
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) m_new = fmaxf(m_new, sc[u]);
    if (m_new == -INFINITY) continue;  // no valid token for this group yet
    const float corr = exp2f(m - m_new);  // m = -inf on the first step: 0
    l *= corr;
#pragma unroll
    for (int e = 0; e < ELEMS; ++e) acc[e] *= corr;
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const float p = exp2f(sc[u] - m_new);  // invalid: exp2(-inf) = 0
      l += p;
      float vf[ELEMS];
      vvec[u].to_f32(vf);
#pragma unroll
      for (int e = 0; e < ELEMS; ++e) acc[e] = fmaf(p, vf[e], acc[e]);
    }
    m = m_new;
  }

  // Merge the groups.
  __shared__ float s_m[GROUPS], s_l[GROUPS];
  __shared__ float s_acc[GROUPS][HEAD_DIM + 1];
  if (lane == 0) { s_m[g] = m; s_l[g] = l; }
#pragma unroll
  for (int e = 0; e < ELEMS; ++e) s_acc[g][lane * ELEMS + e] = acc[e];
  __syncthreads();
  if (tid < HEAD_DIM) {
    float mm = -INFINITY;
#pragma unroll
    for (int i = 0; i < GROUPS; ++i) mm = fmaxf(mm, s_m[i]);
    float ll = 0.0f, o = 0.0f;
#pragma unroll
    for (int i = 0; i < GROUPS; ++i) {
      const float w = s_m[i] == -INFINITY ? 0.0f : exp2f(s_m[i] - mm);
      ll += s_l[i] * w;
      o += s_acc[i][tid] * w;
    }
    const float res = ll > 0.0f ? o / ll : 0.0f;
    if (direct) {
      out[out_row + tid] = Elem<Q>::from_f32(res * v_scale);
    } else {
      const int64_t prow = (static_cast<int64_t>(s) * num_heads + h) * num_parts + part;
      part_out[prow * HEAD_DIM + tid] = res;
      if (tid == 0) { part_ml[prow * 2] = mm; part_ml[prow * 2 + 1] = ll; }
    }
  }
  if (direct || counters == nullptr) return;
  // Fused merge: the row's last partition block to arrive merges them all. Each block makes its
  // partials visible device-wide before it counts itself; the last resets the counter for the next launch.
  __shared__ bool s_last;
  const int64_t row = static_cast<int64_t>(s) * num_heads + h;
  const int used = (len + partition_tokens - 1) / partition_tokens;
  __threadfence();
  __syncthreads();
  if (tid == 0) {
    s_last = atomicAdd(counters + row, 1) == used - 1;
    if (s_last) counters[row] = 0;
  }
  __syncthreads();
  if (!s_last) return;
  __threadfence();
  if (tid < HEAD_DIM) merge_partitions<Q, HEAD_DIM>(part_out, part_ml, out, row, num_parts, used, tid, v_scale);
}

// Arrival counters of the fused merge, one per (sequence, head); zero at load, and zero again after
// every launch (the last block resets its row's).
constexpr int kMaxFusedRows = 1 << 16;
__device__ int g_merge_counters[kMaxFusedRows];

template <typename Q, int HEAD_DIM>
__global__ void __launch_bounds__(HEAD_DIM) paged_decode_reduce_kernel(
    const float* __restrict__ part_out, const float* __restrict__ part_ml, const int32_t* __restrict__ seq_lens,
    Q* __restrict__ out, int num_heads, int partition_tokens, int num_parts, float v_scale) {
  pdl_launch_dependents();
  pdl_wait();
  const int h = blockIdx.x, s = blockIdx.y, d = threadIdx.x;
  const int used = (seq_lens[s] + partition_tokens - 1) / partition_tokens;  // partitions with tokens
  if (used <= 1) return;  // written directly by the main kernel
  merge_partitions<Q, HEAD_DIM>(part_out, part_ml, out, static_cast<int64_t>(s) * num_heads + h, num_parts, used, d, v_scale);
}

// Enough partitions that the grid fills the GPU several times over, but no shorter than 128 tokens.
int choose_partition(int64_t base_blocks, int64_t max_len) {
  const int64_t target = static_cast<int64_t>(cuda_sm_count()) * 8;
  int part = 512;
  while (part > 128 && base_blocks * ((max_len + part - 1) / part) < target) part /= 2;
  return part;
}

template <typename Q, typename KV, int HEAD_DIM>
void launch(const PagedDecodeParams& p, cudaStream_t stream) {
  int page_shift = 0;
  while ((1 << page_shift) < p.page_size) ++page_shift;
  const int64_t max_len = p.max_seq_len > 0 ? p.max_seq_len : p.max_pages_per_seq * p.page_size;
  const int part = p.partition_tokens > 0 ? static_cast<int>(p.partition_tokens)
                                          : choose_partition(p.num_seqs * p.num_heads, max_len);
  const int num_parts = static_cast<int>(max_len > 0 ? (max_len + part - 1) / part : 1);
  STRATOS_CHECK(num_parts <= 65535, "paged_decode", "too many partitions: raise partitionTokens");
  float* part_out = nullptr;
  float* part_ml = nullptr;
  if (num_parts > 1) {
    const size_t rows = static_cast<size_t>(p.num_seqs * p.num_heads * num_parts);
    float* ws = static_cast<float*>(cuda_workspace(rows * (HEAD_DIM + 2) * sizeof(float), stream));
    part_out = ws;
    part_ml = ws + rows * HEAD_DIM;
  }
  const bool fp8 = p.kv_dtype == DType::FP8E4M3;
  const float qk_scale_log2 = p.scale * kLog2e * (fp8 ? p.k_scale : 1.0f);
  const float v_scale = fp8 ? p.v_scale : 1.0f;
  const dim3 grid(static_cast<unsigned>(p.num_heads), static_cast<unsigned>(p.num_seqs), static_cast<unsigned>(num_parts));
  // The fused merge needs its counters: rows beyond them take the merge kernel. There is one set of
  // counters per device, and launches count on it in stream order: two streams running decode at once
  // would interleave their counts and merge half-written rows. So the first (device, stream) to take the
  // fused merge owns the counters (their address is that device's); any other takes the merge kernel,
  // which gives the same output.
  static int owner_device = -1;
  static cudaStream_t owner_stream = nullptr;
  static int* merge_counters = nullptr;
  bool fused = p.fused_reduce && num_parts > 1 && p.num_seqs * p.num_heads <= kMaxFusedRows;
  if (fused) {
    // Only a launch that could take the fused merge asks for its device.
    int device = 0;
    STRATOS_CUDA(cudaGetDevice(&device));
    if (owner_device < 0) {
      STRATOS_CUDA(cudaGetSymbolAddress(reinterpret_cast<void**>(&merge_counters), g_merge_counters));
      owner_device = device;
      owner_stream = stream;
    }
    fused = device == owner_device && stream == owner_stream;
  }
  int* counters = fused ? merge_counters : nullptr;
  // Only a cache of q's dtype takes the fused rope (checked in paged_decode_cuda).
  constexpr bool kCanRope = sizeof(KV) == sizeof(Q);
  const auto kernel = kCanRope && p.k_new != nullptr ? paged_decode_kernel<Q, KV, HEAD_DIM, kCanRope> : paged_decode_kernel<Q, KV, HEAD_DIM, false>;
  launch_kernel(kernel, grid, dim3(kThreads), 0, stream, p.pdl,
      static_cast<const Q*>(p.q), static_cast<const KV*>(p.k_cache), static_cast<const KV*>(p.v_cache), p.block_tables,
      p.seq_lens, static_cast<Q*>(p.out), part_out, part_ml, static_cast<int>(p.num_heads),
      static_cast<int>(p.num_kv_heads), page_shift, static_cast<int>(p.max_pages_per_seq), static_cast<int>(p.num_pages),
      part, num_parts, qk_scale_log2, v_scale, counters, static_cast<const Q*>(p.k_new), static_cast<const Q*>(p.v_new),
      p.rope_theta);
  cuda_check_launch("paged_decode");
  if (num_parts > 1 && !fused) {
    launch_kernel(paged_decode_reduce_kernel<Q, HEAD_DIM>, dim3(static_cast<unsigned>(p.num_heads), static_cast<unsigned>(p.num_seqs)),
                  dim3(HEAD_DIM), 0, stream, p.pdl, static_cast<const float*>(part_out), static_cast<const float*>(part_ml),
                  p.seq_lens, static_cast<Q*>(p.out), static_cast<int>(p.num_heads), part, num_parts, v_scale);
    cuda_check_launch("paged_decode_reduce");
  }
}

template <int HEAD_DIM>
void dispatch_types(const PagedDecodeParams& p, cudaStream_t s) {
  if (p.kv_dtype == DType::FP8E4M3) {
    STRATOS_CHECK(p.q_dtype == DType::BF16, "paged_decode", "an fp8 cache takes bf16 queries");
    launch<__nv_bfloat16, __nv_fp8_e4m3, HEAD_DIM>(p, s);
  } else if (p.kv_dtype == DType::BF16 && p.q_dtype == DType::BF16) {
    launch<__nv_bfloat16, __nv_bfloat16, HEAD_DIM>(p, s);
  } else if (p.kv_dtype == DType::F16 && p.q_dtype == DType::F16) {
    launch<__half, __half, HEAD_DIM>(p, s);
  } else {
    throw Error("paged_decode: unsupported dtypes q=" + std::string(dtype_name(p.q_dtype)) +
                " kv=" + dtype_name(p.kv_dtype));
  }
}

}  // namespace

void paged_decode_cuda(const PagedDecodeParams& p, void* stream) {
  STRATOS_CHECK(p.k_new == nullptr || (p.kv_dtype == p.q_dtype && p.v_new != nullptr), "paged_decode",
                "the fused rope needs a cache of q's dtype and vNew");
  STRATOS_CHECK(p.page_size > 0 && (p.page_size & (p.page_size - 1)) == 0, "paged_decode", "pageSize must be a power of two");
  STRATOS_CHECK(p.num_heads % p.num_kv_heads == 0, "paged_decode", "numHeads must be a multiple of numKvHeads");
  if (p.num_seqs == 0) return;
  auto s = as_stream(stream);
  if (p.head_dim == 128) dispatch_types<128>(p, s);
  else if (p.head_dim == 64) dispatch_types<64>(p, s);
  else throw Error("paged_decode: headDim must be 64 or 128 on the GPU");
}

}  // namespace stratos
