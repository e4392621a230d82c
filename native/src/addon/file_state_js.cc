#include "file_state_js.h"

namespace cryopod {

namespace {

constexpr uint64_t kMaxSafe = (1ULL << 53) - 1;
constexpr size_t kMaxItems = 1 << 16;
constexpr int kMaxDepth = 4;

Napi::TypeError bad(Napi::Env env, const std::string& what, const std::string& why) {
  return Napi::TypeError::New(env, what + ": " + why);
}

FileState from_js(const Napi::Value& v, const std::string& what, int depth) {
  Napi::Env env = v.Env();
  if (!v.IsObject() || v.IsArray()) throw bad(env, what, "must be an object");
  if (depth > kMaxDepth) throw bad(env, what, "is nested too deeply");
  Napi::Object o = v.As<Napi::Object>();
  FileState s;
  Napi::Value num = o.Get("num");
  if (!num.IsUndefined()) {
    if (!num.IsObject()) throw bad(env, what + ".num", "must be an object");
    Napi::Object n = num.As<Napi::Object>();
    Napi::Array keys = n.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
      Napi::Value x = n.Get(key);
      if (x.IsBigInt()) {
        bool lossless = false;
        s.num[key] = x.As<Napi::BigInt>().Uint64Value(&lossless);
        if (!lossless) throw bad(env, what + ".num." + key, "does not fit in 64 bits");
      } else if (x.IsNumber()) {
        double d = x.As<Napi::Number>().DoubleValue();
        if (d < 0 || d > (double)kMaxSafe || d != (double)(uint64_t)d) throw bad(env, what + ".num." + key, "must be a non-negative integer");
        s.num[key] = (uint64_t)d;
      } else {
        throw bad(env, what + ".num." + key, "must be a number or a bigint");
      }
    }
  }
  Napi::Value text = o.Get("text");
  if (!text.IsUndefined()) {
    if (!text.IsObject()) throw bad(env, what + ".text", "must be an object");
    Napi::Object t = text.As<Napi::Object>();
    Napi::Array keys = t.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
      if (!t.Get(key).IsString()) throw bad(env, what + ".text." + key, "must be a string");
      s.text[key] = t.Get(key).As<Napi::String>().Utf8Value();
    }
  }
  Napi::Value data = o.Get("data");
  if (!data.IsUndefined()) {
    if (!data.IsBuffer()) throw bad(env, what + ".data", "must be a Buffer");
    auto b = data.As<Napi::Buffer<uint8_t>>();
    s.data.assign(b.Data(), b.Data() + b.Length());
  }
  Napi::Value items = o.Get("items");
  if (!items.IsUndefined()) {
    if (!items.IsArray()) throw bad(env, what + ".items", "must be an array");
    Napi::Array a = items.As<Napi::Array>();
    if (a.Length() > kMaxItems) throw bad(env, what + ".items", "has too many entries");
    for (uint32_t i = 0; i < a.Length(); ++i)
      s.items.push_back(from_js(a.Get(i), what + ".items[" + std::to_string(i) + "]", depth + 1));
  }
  return s;
}

}  // namespace

Napi::Object file_state_to_js(Napi::Env env, const FileState& s) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Object num = Napi::Object::New(env);
  for (const auto& [k, v] : s.num)
    num.Set(k, v <= kMaxSafe ? Napi::Value(Napi::Number::New(env, (double)v)) : Napi::Value(Napi::BigInt::New(env, v)));
  o.Set("num", num);
  Napi::Object text = Napi::Object::New(env);
  for (const auto& [k, v] : s.text) text.Set(k, v);
  o.Set("text", text);
  if (!s.data.empty()) o.Set("data", Napi::Buffer<uint8_t>::Copy(env, s.data.data(), s.data.size()));
  if (!s.items.empty()) {
    Napi::Array items = Napi::Array::New(env, s.items.size());
    for (size_t i = 0; i < s.items.size(); ++i) items.Set(i, file_state_to_js(env, s.items[i]));
    o.Set("items", items);
  }
  return o;
}

FileState file_state_from_js(const Napi::Value& v, const std::string& what) { return from_js(v, what, 0); }

std::vector<InheritFd> inherit_from_js(const Napi::Value& v) {
  std::vector<InheritFd> out;
  if (v.IsUndefined()) return out;
  Napi::Env env = v.Env();
  if (!v.IsArray()) throw Napi::TypeError::New(env, "inheritFds must be an array");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    std::string what = "inheritFds[" + std::to_string(i) + "]";
    if (!a.Get(i).IsObject()) throw bad(env, what, "must be an object");
    Napi::Object o = a.Get(i).As<Napi::Object>();
    if (!o.Get("fd").IsNumber()) throw bad(env, what + ".fd", "must be a number");
    InheritFd f;
    f.fd = o.Get("fd").As<Napi::Number>().Int32Value();
    if (o.Get("restorerFd").IsNumber()) {
      f.from = InheritFd::RestorerFd;
      f.source_fd = o.Get("restorerFd").As<Napi::Number>().Int32Value();
    } else if (o.Get("stubFd").IsNumber()) {
      f.from = InheritFd::StubFd;
      f.source_fd = o.Get("stubFd").As<Napi::Number>().Int32Value();
    } else if (o.Get("path").IsString()) {
      f.from = InheritFd::Path;
      f.path = o.Get("path").As<Napi::String>().Utf8Value();
    } else {
      throw bad(env, what, "needs one of restorerFd, stubFd (numbers) or path (a string)");
    }
    out.push_back(f);
  }
  return out;
}

Napi::Array reports_to_js(Napi::Env env, const std::vector<FdReport>& reports) {
  Napi::Array out = Napi::Array::New(env, reports.size());
  for (size_t i = 0; i < reports.size(); ++i) {
    const FdReport& r = reports[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("pid", r.pid);
    o.Set("fd", r.fd);
    o.Set("object", r.object);
    o.Set("kind", r.kind);
    o.Set("verdict", r.verdict.status == FileVerdict::Saved ? "saved" : r.verdict.status == FileVerdict::External ? "external" : "refused");
    o.Set("note", r.verdict.note);
    out.Set(i, o);
  }
  return out;
}

}  // namespace cryopod
