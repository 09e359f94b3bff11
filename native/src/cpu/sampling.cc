// CPU reference: fused sampling with the exact integer semantics documented in ops/sampling.h.
// It sorts (the GPU does not); both pick the same thresholds because both define them on the
// integer weights w_i, ties included.
#include <algorithm>
#include <functional>
#include <vector>
#include "stratos/ops/sampling.h"
#include "stratos/philox.h"

namespace stratos {

static constexpr float kWeightScale = 2147483648.0f;  // 2^31

void sampling_cpu(const SamplingParams& p) {
  std::vector<uint32_t> w(static_cast<size_t>(p.vocab)), sorted;
  for (int64_t row = 0; row < p.batch; ++row) {
    const float* x = p.logits + row * p.vocab;
    p.tokens[row] = 0;
    p.logprobs[row] = std::nanf("");
    bool invalid = false;
    float mx = -INFINITY;
    for (int64_t i = 0; i < p.vocab; ++i) {
      if (std::isnan(x[i]) || x[i] == INFINITY) invalid = true;
      if (x[i] > mx) mx = x[i];
    }
    if (invalid) { p.status[row] = kSampleInvalidLogits; continue; }
    if (mx == -INFINITY) { p.status[row] = kSampleAllMasked; continue; }
    const float temp = p.temperature[row];
    if (!(temp >= 0.0f) || std::isinf(temp)) { p.status[row] = kSampleInvalidParams; continue; }
    double raw_sum = 0.0;
    for (int64_t i = 0; i < p.vocab; ++i) raw_sum += std::exp(static_cast<double>(x[i]) - mx);
    const double log_z = static_cast<double>(mx) + std::log(raw_sum);
    p.status[row] = kSampleOk;
    int64_t token = 0;
    if (temp == 0.0f) {
      for (int64_t i = 1; i < p.vocab; ++i) if (x[i] > x[token]) token = i;
    } else {
      for (int64_t i = 0; i < p.vocab; ++i) w[i] = static_cast<uint32_t>(std::exp((x[i] - mx) / temp) * kWeightScale);
      uint32_t thresh = 1;  // w == 0 is never drawn
      const float min_p = p.min_p[row];
      if (min_p > 0.0f) thresh = std::max(thresh, static_cast<uint32_t>(std::min(min_p, 1.0f) * kWeightScale));
      const int32_t k = p.top_k[row];
      if (k > 0 && k < p.vocab) {
        sorted.assign(w.begin(), w.end());
        std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<uint32_t>());
        thresh = std::max(thresh, sorted[k - 1]);
      }
      const float top_p = p.top_p[row];
      if (top_p < 1.0f) {
        sorted.clear();
        uint64_t mass = 0;
        for (int64_t i = 0; i < p.vocab; ++i) if (w[i] >= thresh) { sorted.push_back(w[i]); mass += w[i]; }
        std::sort(sorted.begin(), sorted.end(), std::greater<uint32_t>());
        uint64_t target = static_cast<uint64_t>(static_cast<double>(std::max(top_p, 0.0f)) * static_cast<double>(mass));
        if (target < 1) target = 1;
        uint64_t cum = 0;
        for (uint32_t v : sorted) {
          cum += v;
          if (cum >= target) { thresh = std::max(thresh, v); break; }
        }
      }
      uint64_t total = 0;
      for (int64_t i = 0; i < p.vocab; ++i) if (w[i] >= thresh) total += w[i];
      const uint64_t r = mulhi_u64(philox_u64(p.seeds[row], p.offsets[row]), total);
      uint64_t cum = 0;
      for (int64_t i = 0; i < p.vocab; ++i) {
        if (w[i] < thresh) continue;
        cum += w[i];
        if (cum > r) { token = i; break; }
      }
    }
    p.tokens[row] = static_cast<int32_t>(token);
    p.logprobs[row] = static_cast<float>(static_cast<double>(x[token]) - log_z);
  }
}

}  // namespace stratos
