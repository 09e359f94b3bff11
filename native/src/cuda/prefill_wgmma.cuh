// Prefill attention on Hopper tensor cores (wgmma, sm_90a), head_dim 128. Included by prefill.cu,
// which owns the helpers (cp.async, Mma<T>::pack, the shared softmax steps) and the dispatch.
//
// One block per (query head, tile of BM = 64 * NWG queries, sequence); warpgroup g owns query
// rows [64g, 64g + 64). K/V tiles of BN = 64 keys are gathered out of the pages with cp.async into
// a STAGES-deep ring (tiles t+1 .. t+STAGES-1 load while tile t is multiplied; 2, 3 and 4 stages
// measured the same on the H200), laid out as wgmma's 128-byte-swizzled
// canonical tiles: a [R][128] tile is two [R][64] column blocks (R * 128 bytes each); row r of a
// block is 128 bytes at r * 128 with its 16-byte chunk c stored at chunk c ^ (r % 8).
//   S = Q K^T:  wgmma m64n64k16, A = Q and B = K both K-major in shared memory (8 k-steps);
//   O += P V:   wgmma m64n128k16, A = P from registers (the S accumulator layout, as in the
//               mma.sync kernel), B = V N-major in shared memory (imm-trans-b, 4 k-steps).
// The masking, softmax, P packing and store are prefill.cu's shared steps: a wgmma accumulator
// holds, per warp, the same 16-row fragments as mma.sync's m16n8 (d[4n + j] = acc[n][j]).
#pragma once

namespace wgmma_detail {

// Shared-memory matrix descriptor: start address, leading / stride byte offsets (all >> 4) and the
// 128-byte swizzle mode (1 << 62).
__device__ __forceinline__ uint64_t make_desc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
  return static_cast<uint64_t>((addr & 0x3FFFFu) >> 4) | (static_cast<uint64_t>((lbo & 0x3FFFFu) >> 4) << 16) |
         (static_cast<uint64_t>((sbo & 0x3FFFFu) >> 4) << 32) | (1ull << 62);
}
// Byte offset of (row r, 16-byte chunk c in [0, 16)) in a swizzled [R][128] 16-bit tile.
__device__ __forceinline__ uint32_t tile_off(int R, int r, int c) {
  return static_cast<uint32_t>((c >> 3) * R * 128 + r * 128 + (((c & 7) ^ (r & 7)) << 4));
}
__device__ __forceinline__ void fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
// Generic-proxy writes (cp.async) made visible to the async proxy that wgmma reads through.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
// Pins register values at this point of the instruction stream (the wgmma writes them
// asynchronously; uses must not move above the wait, and writes must land before the fence).
template <int N>
__device__ __forceinline__ void pin(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}

template <int N>
__device__ __forceinline__ void pin_u(uint32_t (&r)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) asm volatile("" : "+r"(r[i][j])::"memory");
}

// The two instructions' PTX for AB = "bf16" or "f16", and their accumulator operand lists.
#define STRATOS_WGMMA_SS_N64(AB) \
  "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n" \
  "wgmma.mma_async.sync.aligned.m64n64k16.f32." AB "." AB " " \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
#define STRATOS_WGMMA_RS_N128(AB) \
  "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n" \
  "wgmma.mma_async.sync.aligned.m64n128k16.f32." AB "." AB " " \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
#define STRATOS_WGMMA_D32(d) "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define STRATOS_WGMMA_D64(d) STRATOS_WGMMA_D32(d), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])

template <typename T>
struct Wgmma {
  static constexpr bool kBf16 = std::is_same<T, __nv_bfloat16>::value;
  // d[32] = (scale_d ? d : 0) + A B; A and B K-major in shared memory (m64n64k16).
  static __device__ __forceinline__ void ss_n64(float (&d)[32], uint64_t a_desc, uint64_t b_desc, int scale_d) {
    if constexpr (kBf16) asm volatile(STRATOS_WGMMA_SS_N64("bf16") : STRATOS_WGMMA_D32(d) : "l"(a_desc), "l"(b_desc), "r"(scale_d));
    else asm volatile(STRATOS_WGMMA_SS_N64("f16") : STRATOS_WGMMA_D32(d) : "l"(a_desc), "l"(b_desc), "r"(scale_d));
  }
  // d[64] += A B; A from registers (this warp's 16 rows of the m64k16 fragment), B N-major in
  // shared memory (m64n128k16, imm-trans-b = 1).
  static __device__ __forceinline__ void rs_n128(float (&d)[64], const uint32_t (&a)[4], uint64_t b_desc) {
    if constexpr (kBf16) asm volatile(STRATOS_WGMMA_RS_N128("bf16") : STRATOS_WGMMA_D64(d) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc), "r"(1));
    else asm volatile(STRATOS_WGMMA_RS_N128("f16") : STRATOS_WGMMA_D64(d) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc), "r"(1));
  }
};
#undef STRATOS_WGMMA_SS_N64
#undef STRATOS_WGMMA_RS_N128
#undef STRATOS_WGMMA_D32
#undef STRATOS_WGMMA_D64

// The accumulators are [N][4] arrays as in the mma.sync kernel; wgmma and pin take them flat.
template <int N>
__device__ __forceinline__ float (&flat(float (&a)[N][4]))[N * 4] {
  return reinterpret_cast<float (&)[N * 4]>(a);
}

}  // namespace wgmma_detail

template <typename T, int NWG, int STAGES>
__global__ void __launch_bounds__(NWG * 128) prefill_wgmma_kernel(
    const T* __restrict__ q, const int32_t* __restrict__ cu_seqlens_q, const int32_t* __restrict__ seq_lens_kv,
    const int32_t* __restrict__ block_tables, const T* __restrict__ k_cache, const T* __restrict__ v_cache,
    T* __restrict__ out, int num_heads, int num_kv_heads, int page_shift, int max_pages_per_seq, int num_pages,
    float scale_log2) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using namespace wgmma_detail;
  constexpr int HEAD_DIM = 128, BM = 64 * NWG, kThreads = NWG * 128, NTILES = BN / 8, DTILES = HEAD_DIM / 8;
  constexpr int CHUNKS = HEAD_DIM / 8;             // 16-byte chunks per row
  constexpr uint32_t kKvBytes = BN * HEAD_DIM * 2;  // one K or V tile
  extern __shared__ unsigned char smem_raw[];
  // The swizzle pattern is a function of address bits 4-9: tiles start at 1024-byte boundaries.
  const uint32_t s_base = (smem_addr(smem_raw) + 1023u) & ~1023u;
  const uint32_t sQ = s_base;                    // [BM][128]
  const uint32_t sK = sQ + BM * HEAD_DIM * 2;    // [STAGES][BN][128]
  const uint32_t sV = sK + STAGES * kKvBytes;    // [STAGES][BN][128]

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
  const int wg = warp / 4, wl = warp % 4;

  const int q_last = min(qlen, q_start + BM) - 1;
  const int kv_end = min(kvlen, ctx + q_last + 1);
  const int num_tiles = (kv_end + BN - 1) / BN;

  for (int i = tid; i < BM * CHUNKS; i += kThreads) {
    const int row = i / CHUNKS, chunk = i % CHUNKS;
    const int qi = q_start + row;
    const bool ok = qi < qlen;
    const T* src = q + ((static_cast<int64_t>(q0) + (ok ? qi : 0)) * num_heads + h) * HEAD_DIM + chunk * 8;
    cp_async16(sQ + tile_off(BM, row, chunk), src, ok);
  }
  // The K/V tile copies: thread t moves 16-byte chunk t % 16 of rows t / 16 + j * kRowStep. As
  // kRowStep is a multiple of 8, the swizzle term (row % 8) and so most of each address is fixed
  // per thread and computed once here.
  constexpr int kRowStep = kThreads / CHUNKS;  // 8 or 16
  constexpr int kLoadIters = BN / kRowStep;
  static_assert(kRowStep % 8 == 0 && BN % kRowStep == 0, "K/V load mapping");
  static_assert(STAGES >= 2, "ring depth");
  const int ld_chunk = tid % CHUNKS, ld_row0 = tid / CHUNKS;
  const uint32_t ld_smem0 = tile_off(BN, ld_row0, ld_chunk);  // row ld_row0 + j * kRowStep: + j * kRowStep * 128
  const int64_t page_stride = static_cast<int64_t>(num_kv_heads) * page_size * HEAD_DIM;
  const int64_t ld_gmem0 = static_cast<int64_t>(kvh) * page_size * HEAD_DIM + ld_chunk * 8;
  const int page_mask = page_size - 1;
  auto load_kv = [&](int tile, int buf) {
    const uint32_t dst0 = buf * kKvBytes + ld_smem0;
#pragma unroll
    for (int j = 0; j < kLoadIters; ++j) {
      const int key = tile * BN + ld_row0 + j * kRowStep;
      bool ok = key < kvlen;
      int page = ok ? __ldg(table + (key >> page_shift)) : 0;
      if (page < 0 || page >= num_pages) { ok = false; page = 0; }
      const int64_t off = page * page_stride + ld_gmem0 + (static_cast<int64_t>(key & page_mask) << 7);  // HEAD_DIM = 128
      const uint32_t dst = dst0 + j * kRowStep * 128;
      cp_async16(sK + dst, k_cache + (ok ? off : 0), ok);
      cp_async16(sV + dst, v_cache + (ok ? off : 0), ok);
    }
  };
  // Group g holds tile g (group 0 also Q); tiles 0 .. STAGES-2 before the loop.
#pragma unroll
  for (int t = 0; t < STAGES - 1; ++t) {
    if (t < num_tiles) load_kv(t, t);
    cp_async_commit();
  }

  float o[DTILES][4];
#pragma unroll
  for (int d = 0; d < DTILES; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  const int row_a = wg * 64 + wl * 16 + (lane >> 2);  // this thread's two rows: row_a, row_a + 8
  const int qpos[2] = {ctx + q_start + row_a, ctx + q_start + row_a + 8};
  const int first_q_pos = ctx + q_start + wg * 64;  // this warpgroup's first query
  const uint32_t sQ_wg = sQ + wg * 64 * 128;        // its 64 rows inside each column block
  // Descriptors of the tiles' first k-step; a k-step or ring slot adds its byte offset >> 4 to the
  // start-address field (shared addresses stay below 2^18, so the field never carries over).
  const uint64_t q_desc0 = make_desc(sQ_wg, 16, 1024);
  const uint64_t k_desc0 = make_desc(sK, 16, 1024);
  const uint64_t v_desc0 = make_desc(sV, BN * 128, 1024);  // LBO: the second 64-column block

  for (int tile = 0; tile < num_tiles; ++tile) {
    const int buf = tile % STAGES;
    cp_async_wait<STAGES - 2>();  // groups 0 .. tile have landed (tiles up to tile + STAGES - 2 issued)
    fence_proxy_async();
    __syncthreads();  // every thread's part landed, and every warp finished tile - 1
    // Into the slot of tile - 1, free since the barrier above.
    if (tile + STAGES - 1 < num_tiles) load_kv(tile + STAGES - 1, (tile + STAGES - 1) % STAGES);
    cp_async_commit();

    // S = Q K^T for this warpgroup's 64 rows x BN keys.
    float sacc[NTILES][4];
    fence();
#pragma unroll
    for (int kk = 0; kk < HEAD_DIM / 16; ++kk) {
      const uint32_t koff = (kk & 3) * 32;  // 16 columns = 32 bytes inside a 128-byte row
      const uint64_t a_desc = q_desc0 + (((kk >> 2) * (BM * 128) + koff) >> 4);
      const uint64_t b_desc = k_desc0 + ((buf * kKvBytes + (kk >> 2) * (BN * 128) + koff) >> 4);
      Wgmma<T>::ss_n64(flat(sacc), a_desc, b_desc, kk > 0 ? 1 : 0);
    }
    commit();
    wait0();
    pin(flat(sacc));

    mask_scores(sacc, tile * BN, first_q_pos, qpos, kvlen, lane);
    float corr_r[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) corr_r[r] = softmax_row(sacc, r, m[r], l[r], scale_log2);
    // Rescale O only where a row's maximum moved (corr == 1 exactly otherwise: x * 1 == x).
    if (!__all_sync(0xffffffffu, corr_r[0] == 1.0f && corr_r[1] == 1.0f)) {
#pragma unroll
      for (int d = 0; d < DTILES; ++d) {
        o[d][0] *= corr_r[0]; o[d][1] *= corr_r[0];
        o[d][2] *= corr_r[1]; o[d][3] *= corr_r[1];
      }
    }
    // O += P V, P straight from the S accumulators.
    uint32_t pa[BN / 16][4];
#pragma unroll
    for (int kc = 0; kc < BN / 16; ++kc) pack_p<T>(pa[kc], sacc, kc);
    pin(flat(o));
    fence();
#pragma unroll
    for (int kc = 0; kc < BN / 16; ++kc) {
      // V rows kc*16 .. kc*16+15 (the k-step); LBO = the offset of the second 64-column block.
      const uint64_t b_desc = v_desc0 + ((buf * kKvBytes + kc * 2048) >> 4);
      Wgmma<T>::rs_n128(flat(o), pa[kc], b_desc);
    }
    commit();
    wait0();
    pin(flat(o));
    pin_u(pa);  // the wgmma read pa asynchronously: keep its registers untouched until the wait
  }
  cp_async_wait<0>();
  store_rows<T, HEAD_DIM>(o, l, out, q0, q_start + row_a, qlen, num_heads, h, lane);
#endif
}
