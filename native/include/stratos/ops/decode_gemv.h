// One-row linear layer for batch-1 decode, fused with its neighbours so a decode layer needs fewer
// launches (issue 6: 7B batch-1 decode). out = W x with W [rows, k] (a linear layer's weight):
//   prologue (norm_weight given): x is first RMS-normalised, x_i = round(x_i * rsqrt(mean(x^2) + eps) * g_i)
//     (the residual stream h goes in as x: the add that precedes a norm already happened in the
//     epilogue of the layer before)
//   epilogue kStore:    out[j] = round(acc_j)                                         rows = n
//   epilogue kAdd:      out[j] = round(out[j] + round(acc_j))    (the residual add)   rows = n
//   epilogue kSiluPair: out[j] = round(silu(round(acc_j)) * round(acc_{n + j}))       rows = 2 n
//     (W is gate stacked on up, as the engine stores them)
// Rounding happens where the unfused ops (rmsnorm, gemm, silu_mul) store, so the two paths differ
// only in the order of the f32 sums.
#pragma once
#include <cstdint>
#include "stratos/dtype.h"

namespace stratos {

enum class GemvEpilogue : int { kStore = 0, kAdd = 1, kSiluPair = 2 };

struct DecodeGemvParams {
  DType dtype = DType::BF16;  // of x, weight, norm_weight, out
  int64_t n = 0, k = 0;       // outputs, input features
  GemvEpilogue epilogue = GemvEpilogue::kStore;
  float eps = 1e-6f;
  const void* x = nullptr;            // [k]
  const void* weight = nullptr;       // [n, k], or [2 n, k] for kSiluPair
  const void* norm_weight = nullptr;  // [k] or null (no prologue)
  void* out = nullptr;                // [n]; read too for kAdd; must not alias x
  int blocks_per_sm = 0;  // GPU: blocks per SM the outputs are split over (0: the default, 3)
  bool pdl = false;  // GPU: launch as a programmatic dependent of the previous kernel (weights stream in before it ends)
  // GPU: bytes [l2_prefetch, l2_prefetch + l2_prefetch_bytes) pulled into L2 once this kernel's own
  // weight loads are issued: the next GEMV's weights, across a stretch in which the GPU reads little
  // (rope and attention between q/k/v and o). A hint: the results do not depend on it. 16-byte
  // aligned, bytes a multiple of 16; the CPU reference ignores it.
  const void* l2_prefetch = nullptr;
  int64_t l2_prefetch_bytes = 0;
};

void decode_gemv_cpu(const DecodeGemvParams& p);
void decode_gemv_cuda(const DecodeGemvParams& p, void* stream);

}  // namespace stratos
