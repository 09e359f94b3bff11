// Prefill attention on Hopper, head_dim 128, warp-specialized (sm_90a). Included by prefill.cu after
// prefill_wgmma.cuh, whose wgmma helpers (descriptors, fences, tile_off, pin) it reuses.
//
// One block of three warpgroups per (query head, tile of BM = 128 queries, sequence), one block per SM:
//   warpgroup 0, the producer: loads the Q tile (cp.async) and fills a STAGES-deep ring of K/V tiles
//     of KN keys, each slot guarded by a "full" and an "empty" mbarrier. With TMA (the default) one
//     warp issues tensor-map copies, page by page, straight into the 128-byte-swizzled layout that
//     wgmma reads; boxes on an invalid page or reaching past the last key go through cp.async with
//     zero fill. Without TMA all four warps gather the rows with cp.async. The producer gives most
//     of its registers to the consumers (setmaxnreg).
//   warpgroups 1 and 2, the consumers: 64 query rows each. Per key tile: S = Q K^T (wgmma
//     m64nKNk16, Q and K in shared memory), mask (only tiles that cross the diagonal or the end),
//     online softmax in registers (exp2 with the scale folded into one FMA), O += P V (wgmma
//     m64n128k16, P from registers). The two consumers take turns issuing their tensor-core work
//     (two named barriers), so one's softmax runs while the other's GEMMs occupy the tensor cores;
//     a consumer issues O += P V of tile t and S = Q K^T of tile t + 1 as one batch, then does
//     tile t + 1's softmax.
// No block-wide barrier after the start: the math warps wait only on mbarriers and on each other.
// Query tiles are scheduled heaviest (longest causal row) first.
#pragma once

namespace ws_detail {

__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ bool mbar_try_wait(uint32_t bar, uint32_t parity) {
  uint32_t ok;
  asm volatile(
      "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
      : "=r"(ok)
      : "r"(bar), "r"(parity)
      : "memory");
  return ok != 0;
}
// Waits until the barrier's phase with this parity has completed (bounded by the hardware's
// try_wait time slice per call; the loop ends when the producer's or consumers' arrivals land).
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  while (!mbar_try_wait(bar, parity)) {
  }
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("{\n.reg .b64 st;\nmbarrier.arrive.shared::cta.b64 st, [%0];\n}\n" ::"r"(bar) : "memory");
}
// Arrives on the barrier once every cp.async this thread issued so far has landed (counts as one
// of the barrier's expected arrivals).
__device__ __forceinline__ void cp_async_arrive(uint32_t bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void wgmma_wait1() { asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory"); }
// Adds `bytes` to the barrier's expected transaction count for this phase (the TMA copies'
// complete_tx decrements it); not an arrival.
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
// TMA: the box at (c0, c1, c2) of a 3-D tensor map into shared memory; completes on the barrier.
__device__ __forceinline__ void tma_load_3d(uint32_t dst, const CUtensorMap* map, int c0, int c1, int c2, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(bar)
      : "memory");
}
__device__ __forceinline__ void named_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void named_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

#define STRATOS_WS_SS_N128(AB) \
  "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n" \
  "wgmma.mma_async.sync.aligned.m64n128k16.f32." AB "." AB " " \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
#define STRATOS_WS_D32(d) "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define STRATOS_WS_D64(d) STRATOS_WS_D32(d), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])

// S = Q K^T k-step for KN keys: m64n64k16 (wgmma_detail's) or m64n128k16, both operands K-major
// in shared memory.
template <typename T, int KN>
__device__ __forceinline__ void ss_step(float (&d)[KN / 2], uint64_t a_desc, uint64_t b_desc, int scale_d) {
  if constexpr (KN == 64) {
    wgmma_detail::Wgmma<T>::ss_n64(d, a_desc, b_desc, scale_d);
  } else {
    static_assert(KN == 128, "key tile of 64 or 128");
    if constexpr (std::is_same<T, __nv_bfloat16>::value)
      asm volatile(STRATOS_WS_SS_N128("bf16") : STRATOS_WS_D64(d) : "l"(a_desc), "l"(b_desc), "r"(scale_d));
    else
      asm volatile(STRATOS_WS_SS_N128("f16") : STRATOS_WS_D64(d) : "l"(a_desc), "l"(b_desc), "r"(scale_d));
  }
}
#undef STRATOS_WS_SS_N128
#undef STRATOS_WS_D32
#undef STRATOS_WS_D64

// mask_scores of prefill.cu for a KN-key tile.
template <int KN>
__device__ __forceinline__ void mask_tile(float (&sacc)[KN / 8][4], int key0, int first_q_pos, const int (&qpos)[2], int kvlen,
                                          int lane) {
  if (key0 + KN - 1 > first_q_pos || key0 + KN > kvlen) {
#pragma unroll
    for (int n = 0; n < KN / 8; ++n) {
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int key = key0 + n * 8 + (lane & 3) * 2 + (j & 1);
        if (key > qpos[j >> 1] || key >= kvlen) sacc[n][j] = -INFINITY;
      }
    }
  }
}

}  // namespace ws_detail

constexpr int kWsThreads = 384;  // producer warpgroup + two consumer warpgroups
constexpr int kWsBM = 128;       // query rows per block (64 per consumer)

// Shared-memory bytes of the warp-specialized kernel: Q, the K and V rings, the mbarriers (Q, and
// full/empty for the K and the V ring), and slack to align the tiles to 1024 bytes.
constexpr size_t ws_smem_bytes(int kn, int stages) {
  return static_cast<size_t>(kWsBM * 128 * 2) + static_cast<size_t>(2 * stages) * kn * 128 * 2 + 8 * (1 + 4 * stages) + 1024;
}

// SPLIT: K and V slots have their own full/empty barriers (FlashAttention-3's two pipelines): the
//   K slot of tile t + 1 is released as soon as S(t + 1) is computed, one iteration before the V
//   slot of tile t + 1, so the producer refills K earlier. Otherwise one barrier pair per slot.
//   Measured slower on the H200 (115 vs 97 us, 2048-token benchmark, cp.async producer); kept
//   selectable ("ws128s3k") as the record of that measurement.
// TMA (not with SPLIT; page sizes >= 8): one producer warp moves K/V with TMA (tensor maps over the
//   caches viewed as [pages * kv heads][page_size][128], 128-byte swizzle, which is the layout the
//   wgmma descriptors read), one box of min(page_size, KN) keys x 64 columns per copy. A box whose
//   page entry is invalid or that reaches past the sequence's last key is copied with cp.async
//   instead (zero-filling the keys past the end, so no stale cache value, possibly NaN, meets a
//   zero probability), and signals the same barrier.
// OVERLAP: a consumer issues S(t + 1) before O += P V(t), waits only for S(t + 1), and computes
//   tile t + 1's softmax while its own P V(t) still runs; the O rescale and the P packing wait
//   for P V(t).
template <typename T, int KN, int STAGES, bool SPLIT, bool OVERLAP, bool TMA>
__global__ void __launch_bounds__(kWsThreads, 1) prefill_ws_kernel(
    const T* __restrict__ q, const int32_t* __restrict__ cu_seqlens_q, const int32_t* __restrict__ seq_lens_kv,
    const int32_t* __restrict__ block_tables, const T* __restrict__ k_cache, const T* __restrict__ v_cache,
    T* __restrict__ out, int num_heads, int num_kv_heads, int page_shift, int max_pages_per_seq, int num_pages,
    float scale_log2, const __grid_constant__ CUtensorMap tmap_k, const __grid_constant__ CUtensorMap tmap_v) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using namespace wgmma_detail;
  using namespace ws_detail;
  constexpr int HEAD_DIM = 128, BM = kWsBM, NTILES = KN / 8, DTILES = HEAD_DIM / 8;
  constexpr int CHUNKS = HEAD_DIM / 8;              // 16-byte chunks per row
  constexpr uint32_t kKvBytes = KN * HEAD_DIM * 2;  // one K or V tile
  static_assert(STAGES >= 2, "ring depth");
  static_assert(!(TMA && SPLIT), "the TMA producer fills K and V of a slot together");
  extern __shared__ unsigned char smem_raw[];
  const uint32_t s_base = (smem_addr(smem_raw) + 1023u) & ~1023u;  // swizzle atoms are 1024-byte aligned
  const uint32_t sQ = s_base;                      // [BM][128]: two [BM][64] column blocks
  const uint32_t sK = sQ + BM * HEAD_DIM * 2;      // [STAGES][KN][128]
  const uint32_t sV = sK + STAGES * kKvBytes;      // [STAGES][KN][128]
  const uint32_t bar_q = sV + STAGES * kKvBytes;   // Q landed
  const uint32_t bar_full_k = bar_q + 8;           // [STAGES]: the slot's K (both K and V if !SPLIT) landed
  const uint32_t bar_full_v = bar_full_k + 8 * STAGES;   // [STAGES]: the slot's V landed (SPLIT)
  const uint32_t bar_empty_k = bar_full_v + 8 * STAGES;  // [STAGES]: both consumers done with the slot's K (K and V)
  const uint32_t bar_empty_v = bar_empty_k + 8 * STAGES; // [STAGES]: both consumers done with the slot's V (SPLIT)

  const int h = blockIdx.x, s = blockIdx.z;
  const int q_tile = gridDim.y - 1 - blockIdx.y;  // heaviest (latest) tiles first
  const int q0 = cu_seqlens_q[s];
  const int qlen = cu_seqlens_q[s + 1] - q0;
  const int q_start = q_tile * BM;
  if (q_start >= qlen) return;  // uniform over the block, before any barrier
  const int kvlen = seq_lens_kv[s];
  const int ctx = kvlen - qlen;
  const int q_last = min(qlen, q_start + BM) - 1;
  const int kv_end = min(kvlen, ctx + q_last + 1);
  const int num_tiles = (kv_end + KN - 1) / KN;  // >= 1: kv_end >= ctx + q_start + 1
  const int tid = threadIdx.x, lane = tid % 32;
  // The warp index, broadcast from lane 0 so the compiler knows it is warp-uniform (the role
  // branches below must not look divergent to ptxas, or it serializes the wgmmas).
  const int warp = __shfl_sync(0xffffffffu, tid / 32, 0);

  if (tid == 0) {
    mbar_init(bar_q, 128);
#pragma unroll
    for (int i = 0; i < STAGES; ++i) {
      mbar_init(bar_full_k + 8 * i, TMA ? 32 : 128);  // every producer thread's (TMA: warp 0's) copies
      mbar_init(bar_full_v + 8 * i, 128);
      mbar_init(bar_empty_k + 8 * i, 8);   // lane 0 of every consumer warp
      mbar_init(bar_empty_v + 8 * i, 8);
    }
  }
  __syncthreads();

  if (warp < 4) {
    // ---------------- producer
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
    const int kvh = h / (num_heads / num_kv_heads);
    const int page_size = 1 << page_shift;
    const int32_t* table = block_tables + static_cast<int64_t>(s) * max_pages_per_seq;
    for (int i = tid; i < BM * CHUNKS; i += 128) {
      const int row = i / CHUNKS, chunk = i % CHUNKS;
      const int qi = q_start + row;
      const bool ok = qi < qlen;
      const T* src = q + ((static_cast<int64_t>(q0) + (ok ? qi : 0)) * num_heads + h) * HEAD_DIM + chunk * 8;
      cp_async16(sQ + tile_off(BM, row, chunk), src, ok);
    }
    cp_async_arrive(bar_q);
    // Thread t moves 16-byte chunk t % 16 of rows t / 16 + 8 j: the swizzle term (row % 8) is
    // fixed per thread.
    const int ld_chunk = tid % CHUNKS, ld_row0 = tid / CHUNKS;
    const uint32_t ld_smem0 = tile_off(KN, ld_row0, ld_chunk);
    const int64_t page_stride = static_cast<int64_t>(num_kv_heads) * page_size * HEAD_DIM;
    const int64_t ld_gmem0 = static_cast<int64_t>(kvh) * page_size * HEAD_DIM + ld_chunk * 8;
    const int page_mask = page_size - 1;
    if constexpr (TMA) {
      if (warp != 0) {  // one warp issues the copies
        asm volatile("cp.async.wait_all;\n" ::: "memory");  // this thread's part of Q landed
        return;
      }
      const int box_shift = min(page_shift, __ffs(KN) - 1);  // box rows: min(page_size, KN)
      const int box_rows = 1 << box_shift;
      const int boxes = KN >> box_shift;  // <= 16: page_size >= 8
      const uint32_t box_bytes = box_rows * 128;  // one 64-column block of the box
      for (int t = 0; t < num_tiles; ++t) {
        const int slot = t % STAGES;
        if (t >= STAGES) mbar_wait(bar_empty_k + 8 * slot, ((t / STAGES) - 1) & 1);
        const uint32_t full = bar_full_k + 8 * slot;
        // Lane b < boxes checks box b: a valid page and every key before the end.
        const int key0 = t * KN + lane * box_rows;
        int entry = -1;
        if (lane < boxes && key0 + box_rows <= kvlen) entry = __ldg(table + (key0 >> page_shift));
        const bool use_tma = entry >= 0 && entry < num_pages;
        const uint32_t tma_boxes = __ballot_sync(0xffffffffu, use_tma);
        if (lane == 0 && tma_boxes != 0) mbar_expect_tx(full, __popc(tma_boxes) * box_bytes * 4);  // K and V, 2 column blocks
        __syncwarp();
        if (use_tma) {
          const int c1 = key0 & page_mask, c2 = entry * num_kv_heads + kvh;
          const uint32_t dst = slot * kKvBytes + lane * box_rows * 128;
          tma_load_3d(sK + dst, &tmap_k, 0, c1, c2, full);
          tma_load_3d(sK + dst + KN * 128, &tmap_k, 64, c1, c2, full);
          tma_load_3d(sV + dst, &tmap_v, 0, c1, c2, full);
          tma_load_3d(sV + dst + KN * 128, &tmap_v, 64, c1, c2, full);
        }
        // The other boxes' rows, 16-byte chunks spread over the warp (rows past the end zero-filled).
        uint32_t rest = __ballot_sync(0xffffffffu, lane < boxes && !use_tma);
        for (int guard = 0; rest != 0 && guard < 32; ++guard) {
          const int b = __ffs(rest) - 1;
          rest &= rest - 1;
          for (int i = lane; i < box_rows * CHUNKS; i += 32) {
            const int row = b * box_rows + i / CHUNKS, chunk = i % CHUNKS;
            const int key = t * KN + row;
            bool ok = key < kvlen;
            int page = ok ? __ldg(table + (key >> page_shift)) : 0;
            if (page < 0 || page >= num_pages) { ok = false; page = 0; }
            const int64_t off = page * page_stride + static_cast<int64_t>(kvh) * page_size * HEAD_DIM +
                                (static_cast<int64_t>(key & page_mask) << 7) + chunk * 8;
            const uint32_t dst = slot * kKvBytes + tile_off(KN, row, chunk);
            cp_async16(sK + dst, k_cache + (ok ? off : 0), ok);
            cp_async16(sV + dst, v_cache + (ok ? off : 0), ok);
          }
        }
        cp_async_arrive(full);
      }
      asm volatile("cp.async.wait_all;\n" ::: "memory");
      return;
    }
    // Copies this thread's chunks of tile t into slot `slot` of K (DO_K) and/or V (DO_V).
    auto load = [&](int t, int slot, auto do_k, auto do_v) {
      const uint32_t dst0 = slot * kKvBytes + ld_smem0;
#pragma unroll 4
      for (int j = 0; j < KN / 8; ++j) {
        const int key = t * KN + ld_row0 + j * 8;
        bool ok = key < kvlen;
        int page = ok ? __ldg(table + (key >> page_shift)) : 0;
        if (page < 0 || page >= num_pages) { ok = false; page = 0; }
        const int64_t off = page * page_stride + ld_gmem0 + (static_cast<int64_t>(key & page_mask) << 7);  // HEAD_DIM = 128
        const uint32_t dst = dst0 + j * 8 * 128;
        if constexpr (decltype(do_k)::value) cp_async16(sK + dst, k_cache + (ok ? off : 0), ok);
        if constexpr (decltype(do_v)::value) cp_async16(sV + dst, v_cache + (ok ? off : 0), ok);
      }
    };
    for (int t = 0; t < num_tiles; ++t) {
      const int slot = t % STAGES;
      const uint32_t parity = ((t / STAGES) - 1) & 1;  // the slot's previous use (t >= STAGES)
      if (t >= STAGES) mbar_wait(bar_empty_k + 8 * slot, parity);
      if constexpr (SPLIT) {
        load(t, slot, std::true_type{}, std::false_type{});
        cp_async_arrive(bar_full_k + 8 * slot);
        if (t >= STAGES) mbar_wait(bar_empty_v + 8 * slot, parity);
        load(t, slot, std::false_type{}, std::true_type{});
        cp_async_arrive(bar_full_v + 8 * slot);
      } else {
        load(t, slot, std::true_type{}, std::true_type{});
        cp_async_arrive(bar_full_k + 8 * slot);
      }
    }
    asm volatile("cp.async.wait_all;\n" ::: "memory");
    return;
  }

  // ---------------- consumers
  asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");
  const int c = warp / 4 - 1;  // consumer 0 or 1: query rows [64c, 64c + 64)
  const int wl = warp % 4;
  const int kTurnMine = 1 + c, kTurnOther = 2 - c;  // named barriers 1 and 2 (0 is __syncthreads)
  const int row_a = c * 64 + wl * 16 + (lane >> 2);  // this thread's rows: row_a and row_a + 8
  const int qpos[2] = {ctx + q_start + row_a, ctx + q_start + row_a + 8};
  const int first_q_pos = ctx + q_start + c * 64;
  const uint64_t q_desc0 = make_desc(sQ + c * 64 * 128, 16, 1024);
  const uint64_t k_desc0 = make_desc(sK, 16, 1024);
  const uint64_t v_desc0 = make_desc(sV, KN * 128, 1024);  // LBO: the second 64-column block

  float o[DTILES][4];
#pragma unroll
  for (int d = 0; d < DTILES; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  float sacc[NTILES][4];
  uint32_t pa[KN / 16][4];
  float corr_r[2];

  auto issue_s = [&](int slot) {
#pragma unroll
    for (int kk = 0; kk < HEAD_DIM / 16; ++kk) {
      const uint32_t koff = (kk & 3) * 32;  // 16 columns = 32 bytes inside a 128-byte row
      const uint64_t a_desc = q_desc0 + (((kk >> 2) * (BM * 128) + koff) >> 4);
      const uint64_t b_desc = k_desc0 + ((slot * kKvBytes + (kk >> 2) * (KN * 128) + koff) >> 4);
      ss_step<T, KN>(flat(sacc), a_desc, b_desc, kk > 0 ? 1 : 0);
    }
  };
  auto issue_pv = [&](int slot) {
#pragma unroll
    for (int kc = 0; kc < KN / 16; ++kc) {
      // V rows kc*16 .. kc*16+15 (the k-step); LBO = the offset of the second 64-column block.
      const uint64_t b_desc = v_desc0 + ((slot * kKvBytes + kc * 2048) >> 4);
      Wgmma<T>::rs_n128(flat(o), pa[kc], b_desc);
    }
  };
  // Tile t's scores (in sacc) -> probabilities; the running max and sum move, corr_r says by
  // how much O must be scaled. Touches neither O nor pa.
  auto softmax_scores = [&](int t) {
    mask_tile<KN>(sacc, t * KN, first_q_pos, qpos, kvlen, lane);
#pragma unroll
    for (int r = 0; r < 2; ++r) corr_r[r] = softmax_row(sacc, r, m[r], l[r], scale_log2);
  };
  // Rescales O where a row's maximum moved and packs P for the next O += P V.
  auto rescale_pack = [&]() {
    if (!__all_sync(0xffffffffu, corr_r[0] == 1.0f && corr_r[1] == 1.0f)) {
#pragma unroll
      for (int d = 0; d < DTILES; ++d) {
        o[d][0] *= corr_r[0]; o[d][1] *= corr_r[0];
        o[d][2] *= corr_r[1]; o[d][3] *= corr_r[1];
      }
    }
#pragma unroll
    for (int kc = 0; kc < KN / 16; ++kc) pack_p<T>(pa[kc], sacc, kc);
  };
  auto release = [&](uint32_t bar) {
    __syncwarp();
    if (lane == 0) mbar_arrive(bar);
  };

  if (c == 1) named_arrive(kTurnOther, 256);  // consumer 0 issues first
  mbar_wait(bar_q, 0);
  mbar_wait(bar_full_k, 0);
  fence_proxy_async();  // the cp.async (generic proxy) writes, read by wgmma (async proxy)
  named_sync(kTurnMine, 256);
  fence();
  issue_s(0);
  commit();
  named_arrive(kTurnOther, 256);
  wait0();
  pin(flat(sacc));
  if constexpr (SPLIT) release(bar_empty_k);
  softmax_scores(0);
  rescale_pack();

  // Tile t: O += P V of tile t and (MORE: not the last tile) S = Q K^T of tile t + 1 in one batch,
  // then tile t + 1's softmax. MORE is a compile-time flag (the last tile is peeled off the loop):
  // a wgmma issued under a run-time condition makes ptxas serialize every wgmma of the kernel.
  auto step = [&](int t, auto more_flag) {
    constexpr bool MORE = decltype(more_flag)::value;
    const int slot = t % STAGES, next = (t + 1) % STAGES;
    if constexpr (SPLIT) mbar_wait(bar_full_v + 8 * slot, (t / STAGES) & 1);
    if constexpr (MORE) mbar_wait(bar_full_k + 8 * next, ((t + 1) / STAGES) & 1);
    fence_proxy_async();
    pin(flat(o));
    named_sync(kTurnMine, 256);
    fence();
    if constexpr (MORE && OVERLAP) {
      issue_s(next);
      commit();
      issue_pv(slot);
      commit();
    } else {
      issue_pv(slot);
      if constexpr (MORE) issue_s(next);
      commit();
    }
    // Hand the tensor cores to the other consumer. Consumer 1's last batch has no successor: its
    // arrival would be left unmatched.
    if (MORE || c == 0) named_arrive(kTurnOther, 256);
    if constexpr (MORE && OVERLAP) {
      wgmma_wait1();  // S(t + 1) done; P V(t) may still run
      pin(flat(sacc));
      if constexpr (SPLIT) release(bar_empty_k + 8 * next);
      softmax_scores(t + 1);
      wait0();
      pin(flat(o));
      pin_u(pa);
      release((SPLIT ? bar_empty_v : bar_empty_k) + 8 * slot);
      rescale_pack();
    } else {
      wait0();
      pin(flat(o));
      pin(flat(sacc));
      pin_u(pa);
      if constexpr (SPLIT) {
        release(bar_empty_v + 8 * slot);
        if constexpr (MORE) release(bar_empty_k + 8 * next);
      } else {
        release(bar_empty_k + 8 * slot);  // this warp is done with K and V of tile t
      }
      if constexpr (MORE) {
        softmax_scores(t + 1);
        rescale_pack();
      }
    }
  };
  for (int t = 0; t + 1 < num_tiles; ++t) step(t, std::true_type{});
  step(num_tiles - 1, std::false_type{});
  store_rows<T, HEAD_DIM>(o, l, out, q0, q_start + row_a, qlen, num_heads, h, lane);
#endif
}
