// GEMM through cuBLASLt: c[m, n] = alpha * a[m, k] b[n, k]^T in bf16/f16 (f32 accumulate), or fp8
// e4m3 inputs with per-tensor scales and bf16 output. Its own translation unit, compiled only where
// cuBLAS is installed (gemm_absent.cc stands in elsewhere).
//
// Row-major c = a b^T is column-major c^T = b a^T, i.e. cuBLAS's "TN" case with A' = b (k x n,
// transposed) and B' = a (k x m): the layout fp8 requires, and the natural one for linear layers.
// Plans (descriptors + algorithm) are cached per shape; on a shape's first call the top cuBLASLt
// heuristic candidates and plain cublasGemmEx (the path torch.matmul takes) are timed, interleaved
// over several rounds, and the fastest kept (never while a graph is being captured; see tune()).
// STRATOS_GEMM_LOG=1 prints each shape's candidates and the pick to stderr.
#include <cublasLt.h>
#include <cublas_v2.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "common.cuh"
#include "stratos/ops/gemm.h"

namespace stratos {

namespace {

#define STRATOS_CUBLAS(call)                                                                          \
  do {                                                                                                \
    cublasStatus_t st_ = (call);                                                                      \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                                 \
      throw ::stratos::Error(std::string(#call) + " failed: cublasStatus " + std::to_string(static_cast<int>(st_))); \
  } while (0)

constexpr size_t kWorkspaceBytes = 32u << 20;

struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool tuned = false;
  bool use_gemm_ex = false;  // cublasGemmEx won the tuning
  std::vector<cublasLtMatmulAlgo_t> candidates;
};

struct Lt {
  cublasLtHandle_t handle = nullptr;
  cublasHandle_t blas = nullptr;
  void* workspace = nullptr;
  std::map<std::tuple<int, int, int64_t, int64_t, int64_t>, Plan> plans;
  std::mutex mutex;
};

Lt& lt() {
  static Lt state;
  if (!state.handle) {
    STRATOS_CUBLAS(cublasLtCreate(&state.handle));
    STRATOS_CUDA(cudaMalloc(&state.workspace, kWorkspaceBytes));
    STRATOS_CUBLAS(cublasCreate(&state.blas));
    STRATOS_CUBLAS(cublasSetWorkspace(state.blas, state.workspace, kWorkspaceBytes));
  }
  return state;
}

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::BF16: return CUDA_R_16BF;
    case DType::F16: return CUDA_R_16F;
    case DType::FP8E4M3: return CUDA_R_8F_E4M3;
    case DType::F32: return CUDA_R_32F;
    default: throw Error("gemm: unsupported dtype " + std::string(dtype_name(t)));
  }
}

Plan& plan_for(Lt& s, const GemmParams& p) {
  const auto key = std::make_tuple(static_cast<int>(p.ab_dtype), static_cast<int>(p.c_dtype), p.m, p.n, p.k);
  auto it = s.plans.find(key);
  if (it != s.plans.end()) return it->second;
  Plan plan;
  STRATOS_CUBLAS(cublasLtMatmulDescCreate(&plan.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  STRATOS_CUBLAS(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  STRATOS_CUBLAS(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  const cudaDataType_t in = cuda_type(p.ab_dtype), out = cuda_type(p.c_dtype);
  STRATOS_CUBLAS(cublasLtMatrixLayoutCreate(&plan.a, in, static_cast<uint64_t>(p.k), static_cast<uint64_t>(p.n), p.k));
  STRATOS_CUBLAS(cublasLtMatrixLayoutCreate(&plan.b, in, static_cast<uint64_t>(p.k), static_cast<uint64_t>(p.m), p.k));
  STRATOS_CUBLAS(cublasLtMatrixLayoutCreate(&plan.c, out, static_cast<uint64_t>(p.n), static_cast<uint64_t>(p.m), p.n));
  if (p.ab_dtype == DType::FP8E4M3) {
    // A' is b and B' is a: their scales swap accordingly.
    STRATOS_CUBLAS(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &p.b_scale_dev, sizeof(void*)));
    STRATOS_CUBLAS(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &p.a_scale_dev, sizeof(void*)));
  }
  cublasLtMatmulPreference_t pref;
  STRATOS_CUBLAS(cublasLtMatmulPreferenceCreate(&pref));
  const size_t ws = kWorkspaceBytes;
  STRATOS_CUBLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  cublasLtMatmulHeuristicResult_t results[24];
  int returned = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(s.handle, plan.op, plan.a, plan.b, plan.c, plan.c, pref, 24, results, &returned);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS || returned == 0)
    throw Error("gemm: cuBLASLt has no algorithm for " + std::string(dtype_name(p.ab_dtype)) + " m=" + std::to_string(p.m) +
                " n=" + std::to_string(p.n) + " k=" + std::to_string(p.k));
  for (int i = 0; i < returned; ++i) plan.candidates.push_back(results[i].algo);
  plan.algo = results[0].algo;
  return s.plans.emplace(key, std::move(plan)).first->second;
}

void matmul(Lt& s, Plan& plan, const GemmParams& p, const cublasLtMatmulAlgo_t& algo, cudaStream_t stream) {
  const float alpha = p.alpha, beta = 0.0f;
  if (p.ab_dtype == DType::FP8E4M3) {  // the scale pointers may change between calls
    STRATOS_CUBLAS(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &p.b_scale_dev, sizeof(void*)));
    STRATOS_CUBLAS(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &p.a_scale_dev, sizeof(void*)));
  }
  STRATOS_CUBLAS(cublasLtMatmul(s.handle, plan.op, &alpha, p.b, plan.a, p.a, plan.b, &beta, p.c, plan.c, p.c, plan.c, &algo,
                                s.workspace, kWorkspaceBytes, stream));
}

// The same product through plain cuBLAS (bf16/f16 only).
void gemm_ex(Lt& s, const GemmParams& p, cudaStream_t stream) {
  const float alpha = p.alpha, beta = 0.0f;
  const cudaDataType_t t = cuda_type(p.ab_dtype);
  STRATOS_CUBLAS(cublasSetStream(s.blas, stream));
  STRATOS_CUBLAS(cublasGemmEx(s.blas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(p.n), static_cast<int>(p.m),
                              static_cast<int>(p.k), &alpha, p.b, t, static_cast<int>(p.k), p.a, t, static_cast<int>(p.k),
                              &beta, p.c, t, static_cast<int>(p.n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT_TENSOR_OP));
}

// Candidates are timed interleaved (round r times every candidate once) after a warm-up of about
// 20 ms, so a clock or power ramp during tuning shifts all of them alike instead of favouring
// whichever ran last; each candidate's score is its median over kRounds batches. cublasGemmEx (the
// path torch.matmul takes for bf16) keeps the plan unless a cuBLASLt algorithm beats it by more
// than kLtMargin: a near-tie between different kernels is noise, not a reason to leave torch's.
constexpr int kRounds = 7;
constexpr float kLtMargin = 0.02f;

template <typename Fn>
float time_batch(Fn& fn, int runs, cudaStream_t stream, cudaEvent_t e0, cudaEvent_t e1) {
  STRATOS_CUDA(cudaEventRecord(e0, stream));
  for (int i = 0; i < runs; ++i) fn();
  STRATOS_CUDA(cudaEventRecord(e1, stream));
  STRATOS_CUDA(cudaEventSynchronize(e1));
  float ms = 0.0f;
  STRATOS_CUDA(cudaEventElapsedTime(&ms, e0, e1));
  return ms / static_cast<float>(runs);
}

bool gemm_log_enabled() {
  static const bool v = std::getenv("STRATOS_GEMM_LOG") != nullptr;
  return v;
}

// Times every candidate once per shape and keeps the fastest.
void tune(Lt& s, Plan& plan, const GemmParams& p, cudaStream_t stream) {
  plan.tuned = true;
  cudaEvent_t e0, e1;
  STRATOS_CUDA(cudaEventCreate(&e0));
  STRATOS_CUDA(cudaEventCreate(&e1));
  struct Cand {
    int index;  // into plan.candidates; -1 = cublasGemmEx
    std::vector<float> ms;
  };
  std::vector<Cand> cands;
  const int n_lt = static_cast<int>(plan.candidates.size());
  if (p.ab_dtype != DType::FP8E4M3) cands.push_back({-1, {}});
  for (int i = 0; i < n_lt; ++i) cands.push_back({i, {}});
  auto runner = [&](int index) {
    if (index < 0) gemm_ex(s, p, stream);
    else matmul(s, plan, p, plan.candidates[static_cast<size_t>(index)], stream);
  };
  // Drop candidates that fail to run; the first time of each sizes its batch (about 2 ms).
  std::vector<Cand> ok;
  std::vector<int> runs;
  for (auto& c : cands) {
    try {
      auto fn = [&] { runner(c.index); };
      const float first = time_batch(fn, 1, stream, e0, e1);
      ok.push_back(c);
      runs.push_back(std::max(1, std::min(64, static_cast<int>(2.0f / std::max(first, 1e-4f)))));
    } catch (const Error&) {
      cudaGetLastError();  // a candidate that fails to run is skipped
    }
  }
  if (ok.empty()) throw Error("gemm: no candidate ran for m=" + std::to_string(p.m) + " n=" + std::to_string(p.n) + " k=" + std::to_string(p.k));
  {  // warm-up: about 20 ms of the first candidate, so clocks are up before anything is compared
    auto fn = [&] { runner(ok[0].index); };
    for (int i = 0; i < 10; ++i) time_batch(fn, runs[0], stream, e0, e1);
  }
  for (int r = 0; r < kRounds; ++r) {
    for (size_t i = 0; i < ok.size(); ++i) {
      auto fn = [&] { runner(ok[i].index); };
      ok[i].ms.push_back(time_batch(fn, runs[i], stream, e0, e1));
    }
  }
  float best_lt = 1e30f, gemm_ex_ms = 1e30f;
  int best_index = 0;
  for (auto& c : ok) {
    std::sort(c.ms.begin(), c.ms.end());
    const float med = c.ms[c.ms.size() / 2];
    if (c.index < 0) gemm_ex_ms = med;
    else if (med < best_lt) { best_lt = med; best_index = c.index; }
  }
  plan.algo = plan.candidates[static_cast<size_t>(best_index)];
  plan.use_gemm_ex = gemm_ex_ms < 1e30f && !(best_lt < gemm_ex_ms * (1.0f - kLtMargin));
  if (gemm_log_enabled()) {
    std::fprintf(stderr, "[stratos gemm] m=%lld n=%lld k=%lld: cublasGemmEx %.1f us, best cuBLASLt %.1f us (of %d) -> %s\n",
                 static_cast<long long>(p.m), static_cast<long long>(p.n), static_cast<long long>(p.k), gemm_ex_ms * 1e3f,
                 best_lt * 1e3f, n_lt, plan.use_gemm_ex ? "cublasGemmEx" : "cuBLASLt");
    for (auto& c : ok) {
      if (c.index < 0) continue;
      const auto& algo = plan.candidates[static_cast<size_t>(c.index)];
      int tile = -1, splitk = -1, stages = -1, id = -1;
      size_t w = 0;
      cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_ID, &id, sizeof(id), &w);
      cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof(tile), &w);
      cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk, sizeof(splitk), &w);
      cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof(stages), &w);
      std::fprintf(stderr, "[stratos gemm]   lt#%d algo %d tile %d stages %d splitk %d: %.1f us\n", c.index, id, tile, stages, splitk,
                   c.ms[c.ms.size() / 2] * 1e3f);
    }
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
}

}  // namespace

bool gemm_cuda_available() { return true; }

void gemm_cuda(const GemmParams& p, void* stream) {
  if (p.ab_dtype == DType::FP8E4M3) {
    STRATOS_CHECK(p.a_scale_dev && p.b_scale_dev, "gemm", "fp8 needs aScale and bScale device buffers");
    STRATOS_CHECK(p.c_dtype == DType::BF16, "gemm", "fp8 GEMM writes bf16");
  } else {
    STRATOS_CHECK(p.ab_dtype == p.c_dtype, "gemm", "bf16/f16 GEMM writes its input dtype");
  }
  Lt& s = lt();
  std::lock_guard<std::mutex> lock(s.mutex);
  Plan& plan = plan_for(s, p);
  cudaStream_t cs = as_stream(stream);
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  STRATOS_CUDA(cudaStreamIsCapturing(cs, &capturing));
  if (!plan.tuned && capturing == cudaStreamCaptureStatusNone) tune(s, plan, p, cs);
  if (plan.use_gemm_ex) gemm_ex(s, p, cs);
  else matmul(s, plan, p, plan.algo, cs);
}

}  // namespace stratos
