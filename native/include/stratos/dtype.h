// Element types shared by the CPU references, the CUDA launchers and the binding.
// Host-side conversions are written out bit by bit so the CPU references round exactly as the
// GPU does (round-to-nearest-even; fp8 e4m3 saturates to +-448 like __NV_SATFINITE).
// No napi.h and no CUDA headers here: this file is included by g++ and nvcc alike.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define STRATOS_HD __host__ __device__ __forceinline__
#else
#define STRATOS_HD inline
#endif

namespace stratos {

// Numbering is part of the binding's contract with native/index.ts (DTYPE_CODE there).
enum class DType : int32_t { F32 = 0, BF16 = 1, F16 = 2, FP8E4M3 = 3, I32 = 4 };

inline size_t dtype_bytes(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::BF16: return 2;
    case DType::F16: return 2;
    case DType::FP8E4M3: return 1;
    case DType::I32: return 4;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::BF16: return "bf16";
    case DType::F16: return "f16";
    case DType::FP8E4M3: return "fp8e4m3";
    case DType::I32: return "i32";
  }
  return "?";
}

inline uint32_t f32_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float bits_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

// ---- bf16: the top 16 bits of an f32, rounded to nearest even; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_to_f32(uint16_t h) { return bits_f32(static_cast<uint32_t>(h) << 16); }

// ---- IEEE half, round to nearest even, overflow to inf, subnormals kept.
inline uint16_t f32_to_f16(float f) {
  uint32_t u = f32_bits(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (a < 0x38800000u) {  // below the smallest normal half (2^-14): subnormal or zero
    if (a < 0x33000000u) return static_cast<uint16_t>(sign);  // < 2^-25 rounds to 0
    uint32_t mant = (a & 0x007fffffu) | 0x00800000u;
    int e = static_cast<int>(a >> 23);  // 102..112
    int shift = 126 - e;                // value = mant * 2^(e-150); half ulp = 2^-24
    uint32_t q = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1u);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (q & 1u))) q += 1;
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t r = a - 0x38000000u;  // rebias exponent 127 -> 15
  uint32_t q = r >> 13;
  uint32_t rem = r & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) q += 1;
  return static_cast<uint16_t>(sign | q);
}
inline float f16_to_f32(uint16_t h) {
  uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1fu;
  uint32_t m = h & 0x3ffu;
  if (e == 0) {
    float v = std::ldexp(static_cast<float>(m), -24);
    return sign ? -v : v;
  }
  if (e == 31) return bits_f32(sign | 0x7f800000u | (m << 13));
  return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

// ---- fp8 e4m3 ("fn": no inf, 0x7f/0xff are NaN, max 448), saturating like __NV_SATFINITE.
inline uint8_t f32_to_fp8e4m3(float f) {
  uint32_t u = f32_bits(f);
  uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  float a = std::fabs(f);
  if (std::isnan(f)) return static_cast<uint8_t>(sign | 0x7f);
  if (a >= 448.0f) return static_cast<uint8_t>(sign | 0x7e);
  if (a < 0.015625f) {  // below 2^-6: subnormal, step 2^-9
    float q = std::nearbyint(a * 512.0f);  // 8 becomes the smallest normal (code 0x08), as wanted
    return static_cast<uint8_t>(sign | static_cast<uint8_t>(q));
  }
  int e;
  float m = std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  e -= 1;                       // a = (2m) * 2^e, 2m in [1, 2)
  float q = std::nearbyint((2.0f * m - 1.0f) * 8.0f);
  if (q >= 8.0f) { q = 0.0f; e += 1; }
  uint32_t code = (static_cast<uint32_t>(e + 7) << 3) | static_cast<uint32_t>(q);
  if (code > 0x7eu) code = 0x7eu;
  return static_cast<uint8_t>(sign | code);
}
inline float fp8e4m3_to_f32(uint8_t b) {
  uint32_t e = (b >> 3) & 0xfu;
  uint32_t m = b & 7u;
  float v;
  if ((b & 0x7f) == 0x7f) return std::nanf("");
  if (e == 0) v = std::ldexp(static_cast<float>(m), -9);
  else v = std::ldexp(1.0f + static_cast<float>(m) / 8.0f, static_cast<int>(e) - 7);
  return (b & 0x80) ? -v : v;
}

// Read element i of a host buffer of dtype t as f32 (CPU references compute in f32).
inline float load_f32(const void* p, DType t, size_t i) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(p)[i];
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::FP8E4M3: return fp8e4m3_to_f32(static_cast<const uint8_t*>(p)[i]);
    case DType::I32: return static_cast<float>(static_cast<const int32_t*>(p)[i]);
  }
  return 0.0f;
}
// Store f32 v as element i of a host buffer of dtype t, rounding as the GPU would.
inline void store_f32(void* p, DType t, size_t i, float v) {
  switch (t) {
    case DType::F32: static_cast<float*>(p)[i] = v; break;
    case DType::BF16: static_cast<uint16_t*>(p)[i] = f32_to_bf16(v); break;
    case DType::F16: static_cast<uint16_t*>(p)[i] = f32_to_f16(v); break;
    case DType::FP8E4M3: static_cast<uint8_t*>(p)[i] = f32_to_fp8e4m3(v); break;
    case DType::I32: static_cast<int32_t*>(p)[i] = static_cast<int32_t>(v); break;
  }
}

}  // namespace stratos
