// Helpers for the thin binding. Only files under src/binding include napi.h.
// native/index.ts has checked every argument (types, lengths, ranges) before it calls in; these
// helpers copy the values into the plain structs of include/stratos/ops and check only what a
// wrong call could turn into memory corruption (a host array where a device pointer belongs).
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

#include "stratos/dtype.h"
#include "stratos/error.h"

namespace stratos::binding {

inline Napi::Value field(const Napi::Object& o, const char* key) { return o.Get(key); }

inline bool is_absent(const Napi::Value& v) { return v.IsUndefined() || v.IsNull(); }

[[noreturn]] inline void fail(const Napi::Env& env, const std::string& msg) {
  throw Napi::TypeError::New(env, msg);
}

inline int64_t get_i64(const Napi::Object& o, const char* key) {
  Napi::Value v = field(o, key);
  if (!v.IsNumber()) fail(o.Env(), std::string("argument '") + key + "' must be a number");
  return v.As<Napi::Number>().Int64Value();
}
inline int64_t get_i64_or(const Napi::Object& o, const char* key, int64_t dflt) {
  Napi::Value v = field(o, key);
  return is_absent(v) ? dflt : get_i64(o, key);
}
inline float get_f32(const Napi::Object& o, const char* key) {
  Napi::Value v = field(o, key);
  if (!v.IsNumber()) fail(o.Env(), std::string("argument '") + key + "' must be a number");
  return v.As<Napi::Number>().FloatValue();
}
inline float get_f32_or(const Napi::Object& o, const char* key, float dflt) {
  Napi::Value v = field(o, key);
  return is_absent(v) ? dflt : get_f32(o, key);
}
inline bool get_bool(const Napi::Object& o, const char* key) {
  Napi::Value v = field(o, key);
  if (!v.IsBoolean()) fail(o.Env(), std::string("argument '") + key + "' must be a boolean");
  return v.As<Napi::Boolean>().Value();
}
inline bool get_bool_or(const Napi::Object& o, const char* key, bool dflt) {
  return is_absent(field(o, key)) ? dflt : get_bool(o, key);
}
inline DType get_dtype(const Napi::Object& o, const char* key) {
  const int64_t c = get_i64(o, key);
  if (c < 0 || c > 4) fail(o.Env(), std::string("argument '") + key + "' is not a dtype code");
  return static_cast<DType>(c);
}

// A host typed array (CPU path): its data pointer, or null when absent and allowed.
inline void* host_ptr(const Napi::Object& o, const char* key, bool optional = false) {
  Napi::Value v = field(o, key);
  if (optional && is_absent(v)) return nullptr;
  if (!v.IsTypedArray()) fail(o.Env(), std::string("argument '") + key + "' must be a typed array");
  Napi::TypedArray a = v.As<Napi::TypedArray>();
  return static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset();
}

inline uint64_t bigint_u64(const Napi::Value& v, const char* key) {
  if (!v.IsBigInt()) throw Napi::TypeError::New(v.Env(), std::string("argument '") + key + "' must be a bigint");
  bool lossless = false;
  const uint64_t x = v.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) throw Napi::RangeError::New(v.Env(), std::string("argument '") + key + "' does not fit 64 bits");
  return x;
}

// A device pointer (GPU path), passed from JavaScript as a bigint; null when absent and allowed.
inline void* dev_ptr(const Napi::Object& o, const char* key, bool optional = false) {
  Napi::Value v = field(o, key);
  if (optional && is_absent(v)) return nullptr;
  return reinterpret_cast<void*>(static_cast<uintptr_t>(bigint_u64(v, key)));
}

inline void* stream_of(const Napi::Object& o) { return dev_ptr(o, "stream", true); }

inline Napi::Value ptr_value(const Napi::Env& env, const void* p) {
  return Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)));
}

// Runs fn, turning a C++ error into a JavaScript Error that names the op.
template <typename Fn>
Napi::Value guarded(const Napi::CallbackInfo& info, const char* op, Fn fn) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string(op) + ": " + e.what());
  }
}

inline Napi::Object arg_object(const Napi::CallbackInfo& info, const char* op) {
  if (info.Length() < 1 || !info[0].IsObject()) fail(info.Env(), std::string(op) + ": expected one argument object");
  return info[0].As<Napi::Object>();
}

using Exporter = void (*)(Napi::Env, Napi::Object);

// Each op file defines one of these; module.cc calls them all.
void export_runtime(Napi::Env env, Napi::Object exports);
void export_embedding(Napi::Env env, Napi::Object exports);
void export_rmsnorm(Napi::Env env, Napi::Object exports);
void export_rope(Napi::Env env, Napi::Object exports);
void export_kv_write(Napi::Env env, Napi::Object exports);
void export_paged_decode(Napi::Env env, Napi::Object exports);
void export_prefill(Napi::Env env, Napi::Object exports);
void export_silu_mul(Napi::Env env, Napi::Object exports);
void export_gemm(Napi::Env env, Napi::Object exports);
void export_sampling(Napi::Env env, Napi::Object exports);
void export_lora(Napi::Env env, Napi::Object exports);
void export_cast_f32(Napi::Env env, Napi::Object exports);
void export_decode_gemv(Napi::Env env, Napi::Object exports);

#if STRATOS_WITH_CUDA
constexpr bool kWithCuda = true;
#else
constexpr bool kWithCuda = false;
#endif

// Defines exports[name] = a function taking one argument object; `body` fills the op's params.
#define STRATOS_EXPORT(exports, name, ...)                                                        \
  (exports).Set(name, Napi::Function::New((exports).Env(), [](const Napi::CallbackInfo& info) {   \
    return ::stratos::binding::guarded(info, name, [&]() -> Napi::Value {                        \
      Napi::Object o = ::stratos::binding::arg_object(info, name);                              \
      __VA_ARGS__;                                                                                 \
      return info.Env().Undefined();                                                               \
    });                                                                                            \
  }))

}  // namespace stratos::binding
