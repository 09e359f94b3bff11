// Device memory, streams, events, graphs and the shared workspace, behind plain functions.
#include <mutex>
#include <vector>

#include "common.cuh"
#include "stratos/runtime.h"

namespace stratos {

CudaInfo cuda_info() {
  CudaInfo ci;
  cudaRuntimeGetVersion(&ci.runtime_version);
  cudaDriverGetVersion(&ci.driver_version);  // 0 when no driver is installed
  const cudaError_t err = cudaGetDeviceCount(&ci.device_count);
  if (err != cudaSuccess) {
    ci.device_count = 0;
    ci.reason = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
    if (ci.driver_version == 0) ci.reason += " (no CUDA driver found: this machine has no usable GPU)";
    cudaGetLastError();
    return ci;
  }
  if (ci.device_count == 0) {
    ci.reason = "no CUDA device present";
    return ci;
  }
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    ci.reason = "cudaGetDeviceProperties failed";
    cudaGetLastError();
    return ci;
  }
  ci.name = prop.name;
  ci.cc_major = prop.major;
  ci.cc_minor = prop.minor;
  ci.sm_count = prop.multiProcessorCount;
  ci.total_mem = prop.totalGlobalMem;
  if (prop.major < 9) {
    ci.reason = "device " + ci.name + " has compute capability " + std::to_string(prop.major) + "." +
                std::to_string(prop.minor) + "; this addon is built for sm_90 (Hopper)";
    return ci;
  }
  ci.ok = true;
  return ci;
}

int cuda_sm_count() {
  static const int count = [] {
    int dev = 0, n = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n <= 0) {
      cudaGetLastError();
      return 132;
    }
    return n;
  }();
  return count;
}

void* cuda_malloc(size_t bytes) {
  void* p = nullptr;
  STRATOS_CUDA(cudaMalloc(&p, bytes));
  return p;
}
void cuda_free(void* p) { STRATOS_CUDA(cudaFree(p)); }
void* cuda_host_alloc(size_t bytes) {
  void* p = nullptr;
  STRATOS_CUDA(cudaMallocHost(&p, bytes));
  return p;
}
void cuda_host_free(void* p) { cudaFreeHost(p); }
void cuda_memcpy_h2d(void* dst, const void* src, size_t bytes, void* s) {
  STRATOS_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, as_stream(s)));
}
void cuda_memcpy_d2h(void* dst, const void* src, size_t bytes, void* s) {
  STRATOS_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, as_stream(s)));
}
void cuda_memcpy_d2d(void* dst, const void* src, size_t bytes, void* s) {
  STRATOS_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, as_stream(s)));
}
void cuda_memset(void* dst, int value, size_t bytes, void* s) {
  STRATOS_CUDA(cudaMemsetAsync(dst, value, bytes, as_stream(s)));
}
void* cuda_stream_create() {
  cudaStream_t s;
  STRATOS_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return s;
}
void cuda_stream_destroy(void* s) { STRATOS_CUDA(cudaStreamDestroy(as_stream(s))); }
void cuda_stream_sync(void* s) { STRATOS_CUDA(cudaStreamSynchronize(as_stream(s))); }
void cuda_device_sync() { STRATOS_CUDA(cudaDeviceSynchronize()); }
void* cuda_event_create() {
  cudaEvent_t e;
  STRATOS_CUDA(cudaEventCreate(&e));
  return e;
}
void cuda_event_destroy(void* e) { STRATOS_CUDA(cudaEventDestroy(static_cast<cudaEvent_t>(e))); }
void cuda_event_record(void* e, void* s) { STRATOS_CUDA(cudaEventRecord(static_cast<cudaEvent_t>(e), as_stream(s))); }
void cuda_event_sync(void* e) { STRATOS_CUDA(cudaEventSynchronize(static_cast<cudaEvent_t>(e))); }
float cuda_event_elapsed_ms(void* a, void* b) {
  float ms = 0.0f;
  STRATOS_CUDA(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(a), static_cast<cudaEvent_t>(b)));
  return ms;
}
void cuda_graph_begin(void* s) { STRATOS_CUDA(cudaStreamBeginCapture(as_stream(s), cudaStreamCaptureModeThreadLocal)); }
void* cuda_graph_end(void* s) {
  cudaGraph_t g;
  STRATOS_CUDA(cudaStreamEndCapture(as_stream(s), &g));
  cudaGraphExec_t exec;
  const cudaError_t err = cudaGraphInstantiate(&exec, g, 0);
  cudaGraphDestroy(g);
  STRATOS_CUDA(err);
  return exec;
}
void cuda_graph_launch(void* g, void* s) { STRATOS_CUDA(cudaGraphLaunch(static_cast<cudaGraphExec_t>(g), as_stream(s))); }
void cuda_graph_destroy(void* g) { STRATOS_CUDA(cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(g))); }

static std::mutex g_ws_mutex;
static void* g_ws = nullptr;
static size_t g_ws_bytes = 0;
static std::vector<void*> g_ws_retired;

void* cuda_workspace(size_t bytes, void* s) {
  std::lock_guard<std::mutex> lock(g_ws_mutex);
  if (bytes <= g_ws_bytes) return g_ws;
  cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
  STRATOS_CUDA(cudaStreamIsCapturing(as_stream(s), &cs));
  if (cs != cudaStreamCaptureStatusNone)
    throw Error("the shared workspace must grow to " + std::to_string(bytes) +
                " bytes while a graph is being captured: run the op once before capturing");
  // Grow by 2x so a sequence of slightly larger calls does not reallocate each time. The old
  // buffer is retired, never freed: a captured CUDA graph may have baked its address into a node
  // and replay it later (the retired buffers together are smaller than the current one).
  if (g_ws) g_ws_retired.push_back(g_ws);
  g_ws = nullptr;
  const size_t want = bytes > 2 * g_ws_bytes ? bytes : 2 * g_ws_bytes;
  STRATOS_CUDA(cudaMalloc(&g_ws, want));
  g_ws_bytes = want;
  return g_ws;
}

void cuda_check_launch(const char* op) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw Error(std::string(op) + ": kernel launch failed: " + cudaGetErrorString(err));
}

}  // namespace stratos
