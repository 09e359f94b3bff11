// Widening cast to f32 with an optional row gather and scale:
//   out[r, c] = f32(x[rows ? rows[r] : r, c]) * scale        (r < numRows, c < cols)
// The engine's LM head writes bf16 logits; the fused sampler reads f32, so this op sits between
// them (on the sampled rows only). bf16 and f16 widen exactly, so with scale 1 the f32 values
// order exactly as the 16-bit ones (greedy ties resolve the same way on either).
// A row index outside [0, srcRows) writes a row of NaN (the sampler then reports status 1)
// instead of reading past the buffer; native/index.ts rejects such indices on the CPU path.
#pragma once
#include <cstdint>
#include "stratos/dtype.h"

namespace stratos {

struct CastF32Params {
  DType dtype = DType::BF16;  // of x: bf16 or f16 (the CPU reference also takes f32)
  int64_t num_rows = 0, cols = 0;
  int64_t src_rows = 0;       // rows of x (bounds the gather)
  float scale = 1.0f;
  const void* x = nullptr;          // [srcRows, cols]
  const int32_t* rows = nullptr;    // [numRows] or null (row r reads row r; then numRows <= srcRows)
  float* out = nullptr;             // [numRows, cols]
};

void cast_f32_cpu(const CastF32Params& p);
void cast_f32_cuda(const CastF32Params& p, void* stream);

}  // namespace stratos
