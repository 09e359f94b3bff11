// The export table: every op's CPU reference (always) and CUDA launcher (when built with CUDA),
// plus device memory, streams, events and graphs. native/index.ts is the only caller.
#include "binding.h"
#include "stratos/ops/gemm.h"
#include "stratos/runtime.h"

namespace stratos::binding {

#if STRATOS_WITH_CUDA
static void* ptr_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return reinterpret_cast<void*>(static_cast<uintptr_t>(bigint_u64(info[i], name)));
}
static size_t size_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) fail(info.Env(), std::string(name) + " must be a number");
  const int64_t v = info[i].As<Napi::Number>().Int64Value();
  if (v < 0) fail(info.Env(), std::string(name) + " must be >= 0");
  return static_cast<size_t>(v);
}
static void* host_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsTypedArray()) fail(info.Env(), std::string(name) + " must be a typed array");
  Napi::TypedArray a = info[i].As<Napi::TypedArray>();
  return static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset();
}

#define STRATOS_FN(name, ...)                                                            \
  exports.Set(name, Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value { \
    return guarded(info, name, [&]() -> Napi::Value { __VA_ARGS__ });                    \
  }))
#endif

void export_runtime(Napi::Env env, Napi::Object exports) {
  exports.Set("withCuda", Napi::Boolean::New(env, kWithCuda));
#if STRATOS_WITH_CUDA
  exports.Set("withCublas", Napi::Boolean::New(env, gemm_cuda_available()));
  STRATOS_FN("cudaInfo", {
    const CudaInfo ci = cuda_info();
    Napi::Object r = Napi::Object::New(info.Env());
    r.Set("ok", ci.ok);
    r.Set("deviceCount", ci.device_count);
    r.Set("driverVersion", ci.driver_version);
    r.Set("runtimeVersion", ci.runtime_version);
    r.Set("reason", ci.reason);
    r.Set("name", ci.name);
    r.Set("ccMajor", ci.cc_major);
    r.Set("ccMinor", ci.cc_minor);
    r.Set("smCount", ci.sm_count);
    r.Set("totalMemBytes", static_cast<double>(ci.total_mem));
    return r;
  });
  STRATOS_FN("malloc", { return ptr_value(info.Env(), cuda_malloc(size_arg(info, 0, "bytes"))); });
  STRATOS_FN("free", { cuda_free(ptr_arg(info, 0, "ptr")); return info.Env().Undefined(); });
  STRATOS_FN("hostAlloc", {
    const size_t bytes = size_arg(info, 0, "bytes");
    void* p = cuda_host_alloc(bytes);
    return Napi::ArrayBuffer::New(info.Env(), p, bytes, [](Napi::Env, void* data) { cuda_host_free(data); });
  });
  STRATOS_FN("memcpyH2D", {
    cuda_memcpy_h2d(ptr_arg(info, 0, "dst"), host_arg(info, 1, "src"), size_arg(info, 2, "bytes"), ptr_arg(info, 3, "stream"));
    return info.Env().Undefined();
  });
  STRATOS_FN("memcpyD2H", {
    cuda_memcpy_d2h(host_arg(info, 0, "dst"), ptr_arg(info, 1, "src"), size_arg(info, 2, "bytes"), ptr_arg(info, 3, "stream"));
    return info.Env().Undefined();
  });
  STRATOS_FN("memcpyD2D", {
    cuda_memcpy_d2d(ptr_arg(info, 0, "dst"), ptr_arg(info, 1, "src"), size_arg(info, 2, "bytes"), ptr_arg(info, 3, "stream"));
    return info.Env().Undefined();
  });
  STRATOS_FN("memset", {
    if (!info[1].IsNumber()) fail(info.Env(), "value must be a number");
    cuda_memset(ptr_arg(info, 0, "dst"), info[1].As<Napi::Number>().Int32Value(), size_arg(info, 2, "bytes"), ptr_arg(info, 3, "stream"));
    return info.Env().Undefined();
  });
  STRATOS_FN("streamCreate", { return ptr_value(info.Env(), cuda_stream_create()); });
  STRATOS_FN("streamDestroy", { cuda_stream_destroy(ptr_arg(info, 0, "stream")); return info.Env().Undefined(); });
  STRATOS_FN("streamSync", { cuda_stream_sync(ptr_arg(info, 0, "stream")); return info.Env().Undefined(); });
  STRATOS_FN("deviceSync", { cuda_device_sync(); return info.Env().Undefined(); });
  STRATOS_FN("eventCreate", { return ptr_value(info.Env(), cuda_event_create()); });
  STRATOS_FN("eventDestroy", { cuda_event_destroy(ptr_arg(info, 0, "event")); return info.Env().Undefined(); });
  STRATOS_FN("eventRecord", {
    cuda_event_record(ptr_arg(info, 0, "event"), ptr_arg(info, 1, "stream"));
    return info.Env().Undefined();
  });
  STRATOS_FN("eventSync", { cuda_event_sync(ptr_arg(info, 0, "event")); return info.Env().Undefined(); });
  STRATOS_FN("eventElapsedMs", {
    return Napi::Number::New(info.Env(), cuda_event_elapsed_ms(ptr_arg(info, 0, "start"), ptr_arg(info, 1, "end")));
  });
  STRATOS_FN("graphBegin", { cuda_graph_begin(ptr_arg(info, 0, "stream")); return info.Env().Undefined(); });
  STRATOS_FN("graphEnd", { return ptr_value(info.Env(), cuda_graph_end(ptr_arg(info, 0, "stream"))); });
  STRATOS_FN("graphLaunch", {
    cuda_graph_launch(ptr_arg(info, 0, "graph"), ptr_arg(info, 1, "stream"));
    return info.Env().Undefined();
  });
  STRATOS_FN("graphDestroy", { cuda_graph_destroy(ptr_arg(info, 0, "graph")); return info.Env().Undefined(); });
#else
  exports.Set("withCublas", Napi::Boolean::New(env, false));
#endif
}

static Napi::Object init(Napi::Env env, Napi::Object exports) {
  export_runtime(env, exports);
  export_embedding(env, exports);
  export_rmsnorm(env, exports);
  export_rope(env, exports);
  export_kv_write(env, exports);
  export_paged_decode(env, exports);
  export_prefill(env, exports);
  export_silu_mul(env, exports);
  export_gemm(env, exports);
  export_sampling(env, exports);
  export_lora(env, exports);
  export_cast_f32(env, exports);
  export_decode_gemv(env, exports);
  return exports;
}

}  // namespace stratos::binding

static Napi::Object stratos_init(Napi::Env env, Napi::Object exports) { return stratos::binding::init(env, exports); }

NODE_API_MODULE(stratos_native, stratos_init)
