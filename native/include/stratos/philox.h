// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a
// counter-based generator, so a draw depends only on (key, counter). The sampler keys it with the
// request's seed and counts with the request's step, which makes every sample reproducible on the
// CPU and the GPU alike without any generator state kept between steps.
#pragma once

#include <cstdint>

#include "stratos/dtype.h"

namespace stratos {

struct Philox4 { uint32_t v[4]; };

STRATOS_HD void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

// counter = (c0, c1, c2, c3), key = (k0, k1); ten rounds.
STRATOS_HD Philox4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                                 uint32_t k1) {
  const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(M0, c0, hi0, lo0);
    philox_mulhilo(M1, c2, hi1, lo1);
    uint32_t n0 = hi1 ^ c1 ^ k0;
    uint32_t n2 = hi0 ^ c3 ^ k1;
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    k0 += W0; k1 += W1;
  }
  Philox4 r;
  r.v[0] = c0; r.v[1] = c1; r.v[2] = c2; r.v[3] = c3;
  return r;
}

// One 64-bit uniform draw for (seed, offset): the sampler's only source of randomness.
STRATOS_HD uint64_t philox_u64(uint64_t seed, uint64_t offset) {
  Philox4 r = philox4x32_10(static_cast<uint32_t>(offset), static_cast<uint32_t>(offset >> 32), 0u,
                            0u, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  return static_cast<uint64_t>(r.v[0]) | (static_cast<uint64_t>(r.v[1]) << 32);
}

// floor(u * n / 2^64): maps a 64-bit uniform draw to [0, n) without floating point.
STRATOS_HD uint64_t mulhi_u64(uint64_t u, uint64_t n) {
#if defined(__CUDA_ARCH__)
  return __umul64hi(u, n);
#else
  return static_cast<uint64_t>((static_cast<unsigned __int128>(u) * n) >> 64);
#endif
}

}  // namespace stratos
