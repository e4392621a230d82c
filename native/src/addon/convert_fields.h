// Reading and writing the fields of JS objects for the converters (convert_*.cc). Every reader names
// the field in its TypeError: a wrong shape from JS is a clear error, never a crash.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace cryopod {
namespace js {

inline Napi::Value num(Napi::Env env, uint64_t v) { return Napi::Number::New(env, (double)v); }
inline Napi::Value big(Napi::Env env, uint64_t v) { return Napi::BigInt::New(env, v); }
inline Napi::Buffer<uint8_t> buf(Napi::Env env, const std::vector<uint8_t>& v) {
  return Napi::Buffer<uint8_t>::Copy(env, v.data(), v.size());
}

inline Napi::TypeError bad(const Napi::Object& o, const char* what, const char* name) {
  return Napi::TypeError::New(o.Env(), std::string(what) + name);
}

inline Napi::Value field(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) throw bad(o, "missing field: ", name);
  return v;
}
inline bool has(const Napi::Object& o, const char* name) { return !o.Get(name).IsUndefined(); }

// A number that is a non-negative integer exactly representable in a double.
inline uint64_t get_num(const Napi::Object& o, const char* name) {
  Napi::Value v = field(o, name);
  if (!v.IsNumber()) throw bad(o, "field must be a number: ", name);
  double d = v.As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 9007199254740992.0 || d != (double)(uint64_t)d) throw bad(o, "field must be a non-negative integer: ", name);
  return (uint64_t)d;
}
inline uint64_t get_big(const Napi::Object& o, const char* name) {
  Napi::Value v = field(o, name);
  if (!v.IsBigInt()) throw bad(o, "field must be a bigint: ", name);
  bool lossless = false;
  uint64_t r = v.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) throw bad(o, "field does not fit in 64 bits: ", name);
  return r;
}
inline bool get_bool(const Napi::Object& o, const char* name) { return field(o, name).ToBoolean().Value(); }
inline std::string get_str(const Napi::Object& o, const char* name) {
  Napi::Value v = field(o, name);
  if (!v.IsString()) throw bad(o, "field must be a string: ", name);
  return v.As<Napi::String>().Utf8Value();
}
inline std::vector<uint8_t> get_buf(const Napi::Object& o, const char* name) {
  Napi::Value v = field(o, name);
  if (!v.IsBuffer()) throw bad(o, "field must be a Buffer: ", name);
  auto b = v.As<Napi::Buffer<uint8_t>>();
  return std::vector<uint8_t>(b.Data(), b.Data() + b.Length());
}
inline Napi::Object get_obj(const Napi::Object& o, const char* name) {
  Napi::Value v = field(o, name);
  if (!v.IsObject()) throw bad(o, "field must be an object: ", name);
  return v.As<Napi::Object>();
}
inline Napi::Array get_arr(const Napi::Object& o, const char* name) {
  Napi::Value v = field(o, name);
  if (!v.IsArray()) throw bad(o, "field must be an array: ", name);
  return v.As<Napi::Array>();
}

// A vector of structs as a JS array, one converter per element.
template <typename T, typename ToJs>
Napi::Array array_to_js(Napi::Env env, const std::vector<T>& items, ToJs to_js) {
  Napi::Array a = Napi::Array::New(env, items.size());
  for (size_t i = 0; i < items.size(); ++i) a.Set(i, to_js(env, items[i]));
  return a;
}

// The array field `name` of o, each element converted by from_js(Napi::Object).
template <typename T, typename FromJs>
std::vector<T> array_from_js(const Napi::Object& o, const char* name, FromJs from_js) {
  Napi::Array a = get_arr(o, name);
  std::vector<T> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value v = a.Get(i);
    if (!v.IsObject()) throw bad(o, "elements must be objects: ", name);
    out.push_back(from_js(v.As<Napi::Object>()));
  }
  return out;
}

}  // namespace js
}  // namespace cryopod
