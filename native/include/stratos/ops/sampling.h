// Fused sampling, one row of logits per request. Semantics (the CPU reference and the GPU agree):
//  1. A row with a NaN or +inf logit gets status 1; a row of only -inf gets status 2; a bad
//     temperature (NaN or < 0) gets status 3. Such rows return token 0 and logprob NaN.
//  2. temperature == 0: greedy (argmax, lowest index on ties).
//  3. Otherwise e_i = exp((x_i - max) / T) in f32, and the integer weight w_i = floor(e_i * 2^31)
//     (so the filters and the draw are exact integer arithmetic, deterministic on every device).
//     min-p keeps w_i >= floor(minP * 2^31); top-k keeps w_i >= the k-th largest w (ties kept);
//     top-p then keeps w_i >= the largest t whose kept mass sum(w_i >= t) >= floor(p * mass), with
//     mass taken over the tokens that survived min-p and top-k (ties kept). Tokens with w_i = 0
//     are never drawn.
//  4. r = floor(u * W / 2^64) with u = Philox4x32-10(key = seed, counter = offset) and W the total
//     kept weight; the token is the first, in vocabulary order, whose running kept weight exceeds r.
//  5. logprob = log softmax(raw logits)[token] (before temperature and filters), as APIs report.
#pragma once
#include <cstdint>

namespace stratos {

enum SamplingStatus : int32_t {
  kSampleOk = 0,
  kSampleInvalidLogits = 1,
  kSampleAllMasked = 2,
  kSampleInvalidParams = 3,
};

struct SamplingParams {
  int64_t batch = 0, vocab = 0;
  const float* logits = nullptr;       // [batch, vocab]
  const float* temperature = nullptr;  // [batch]; 0 = greedy
  const int32_t* top_k = nullptr;      // [batch]; <= 0 or >= vocab disables
  const float* top_p = nullptr;        // [batch]; >= 1 disables
  const float* min_p = nullptr;        // [batch]; <= 0 disables
  const uint64_t* seeds = nullptr;     // [batch]
  const uint64_t* offsets = nullptr;   // [batch], e.g. the request's output position
  int32_t* tokens = nullptr;           // [batch]
  float* logprobs = nullptr;           // [batch]
  int32_t* status = nullptr;           // [batch]
};

constexpr int64_t kSamplingMaxVocabCuda = 32768;  // the GPU keeps a whole row in shared memory

void sampling_cpu(const SamplingParams& p);
void sampling_cuda(const SamplingParams& p, void* stream);

}  // namespace stratos
