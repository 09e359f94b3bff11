// The CUDA runtime as the binding sees it: plain functions, no CUDA types, so binding files
// compile with g++ alone. Every function throws stratos::Error with the CUDA error text.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace stratos {

struct CudaInfo {
  bool ok = false;           // a usable device is present
  int device_count = 0;
  int driver_version = 0;    // e.g. 13000; 0 when no driver
  int runtime_version = 0;   // the statically linked cudart
  std::string reason;        // why not ok: "no GPU", "driver too old", ...
  std::string name;          // device 0
  int cc_major = 0, cc_minor = 0, sm_count = 0;
  size_t total_mem = 0;
};

CudaInfo cuda_info();

void* cuda_malloc(size_t bytes);
void cuda_free(void* p);
void* cuda_host_alloc(size_t bytes);  // pinned
void cuda_host_free(void* p);
void cuda_memcpy_h2d(void* dst, const void* src, size_t bytes, void* stream);  // async on stream
void cuda_memcpy_d2h(void* dst, const void* src, size_t bytes, void* stream);
void cuda_memcpy_d2d(void* dst, const void* src, size_t bytes, void* stream);
void cuda_memset(void* dst, int value, size_t bytes, void* stream);
void* cuda_stream_create();
void cuda_stream_destroy(void* s);
void cuda_stream_sync(void* s);
void cuda_device_sync();
void* cuda_event_create();
void cuda_event_destroy(void* e);
void cuda_event_record(void* e, void* stream);
void cuda_event_sync(void* e);
float cuda_event_elapsed_ms(void* start, void* end);
void cuda_graph_begin(void* stream);
void* cuda_graph_end(void* stream);  // returns an instantiated graph
void cuda_graph_launch(void* graph, void* stream);
void cuda_graph_destroy(void* graph);

// A per-process scratch buffer for launchers (e.g. flash-decoding partials). Grows on demand;
// growing is refused while the stream is capturing a graph (run the op once before capturing).
void* cuda_workspace(size_t bytes, void* stream);
// Throws if the last launch failed (cudaGetLastError), naming the op.
void cuda_check_launch(const char* op);

}  // namespace stratos
