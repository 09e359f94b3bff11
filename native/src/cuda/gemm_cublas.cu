// GEMM through cuBLASLt: c[m, n] = alpha * a[m, k] b[n, k]^T in bf16/f16 (f32 accumulate), or fp8
// e4m3 inputs with per-tensor scales and bf16 output. Its own translation unit, compiled only where
// cuBLAS is installed (gemm_absent.cc stands in elsewhere).
//
// Row-major c = a b^T is column-major c^T = b a^T, i.e. cuBLAS's "TN" case with A' = b (k x n,
// transposed) and B' = a (k x m): the layout fp8 requires, and the natural one for linear layers.
// Plans (descriptors + algorithm) are cached per shape; on a shape's first call the top cuBLASLt
// heuristic candidates and plain cublasGemmEx (the path torch.matmul takes) are timed once and the
// fastest kept (never while a graph is being captured).
#include <cublasLt.h>
#include <cublas_v2.h>

#include <algorithm>
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
  cublasLtMatmulHeuristicResult_t results[16];
  int returned = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(s.handle, plan.op, plan.a, plan.b, plan.c, plan.c, pref, 16, results, &returned);
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

// Median time of 5 batches of 4 runs, after a warm-up.
template <typename Fn>
float time_candidate(Fn fn, cudaStream_t stream, cudaEvent_t e0, cudaEvent_t e1) {
  fn();
  float times[5];
  for (int r = 0; r < 5; ++r) {
    STRATOS_CUDA(cudaEventRecord(e0, stream));
    for (int i = 0; i < 4; ++i) fn();
    STRATOS_CUDA(cudaEventRecord(e1, stream));
    STRATOS_CUDA(cudaEventSynchronize(e1));
    STRATOS_CUDA(cudaEventElapsedTime(&times[r], e0, e1));
  }
  std::sort(times, times + 5);
  return times[2];
}

// Times every candidate once per shape and keeps the fastest.
void tune(Lt& s, Plan& plan, const GemmParams& p, cudaStream_t stream) {
  plan.tuned = true;
  cudaEvent_t e0, e1;
  STRATOS_CUDA(cudaEventCreate(&e0));
  STRATOS_CUDA(cudaEventCreate(&e1));
  float best = 1e30f;
  for (const auto& algo : plan.candidates) {
    try {
      const float ms = time_candidate([&] { matmul(s, plan, p, algo, stream); }, stream, e0, e1);
      if (ms < best) { best = ms; plan.algo = algo; }
    } catch (const Error&) {
      cudaGetLastError();  // a candidate that fails to run is skipped
    }
  }
  if (p.ab_dtype != DType::FP8E4M3) {
    try {
      const float ms = time_candidate([&] { gemm_ex(s, p, stream); }, stream, e0, e1);
      if (ms < best) { best = ms; plan.use_gemm_ex = true; }
    } catch (const Error&) {
      cudaGetLastError();
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
