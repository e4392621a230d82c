#include "process_state_js.h"

#include <cmath>

namespace cryopod {

namespace {

// One reader for every scalar: it names the field and the rule it broke.
class Reader {
 public:
  Reader(const Napi::Value& v, std::string what) : env_(v.Env()), what_(std::move(what)) {
    if (!v.IsObject() || v.IsArray()) fail("", "must be an object");
    o_ = v.As<Napi::Object>();
  }
  Napi::Value get(const char* name) const {
    Napi::Value v = o_.Get(name);
    if (v.IsUndefined()) fail(name, "is missing");
    return v;
  }
  uint64_t u64(const char* name) const {
    Napi::Value v = get(name);
    if (!v.IsBigInt()) fail(name, "must be a bigint");
    bool lossless = false;
    uint64_t r = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) fail(name, "must fit in 64 unsigned bits");
    return r;
  }
  int64_t integer(const char* name, int64_t lo, int64_t hi) const {
    Napi::Value v = get(name);
    if (!v.IsNumber()) fail(name, "must be a number");
    double d = v.As<Napi::Number>().DoubleValue();
    if (std::floor(d) != d || d < (double)lo || d > (double)hi)
      fail(name, "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    return (int64_t)d;
  }
  bool flag(const char* name) const {
    Napi::Value v = get(name);
    if (!v.IsBoolean()) fail(name, "must be a boolean");
    return v.As<Napi::Boolean>().Value();
  }
  std::vector<uint8_t> bytes(const char* name, size_t max) const {
    Napi::Value v = get(name);
    if (!v.IsBuffer()) fail(name, "must be a Buffer");
    auto b = v.As<Napi::Buffer<uint8_t>>();
    if (b.Length() > max) fail(name, "is over " + std::to_string(max) + " bytes");
    return std::vector<uint8_t>(b.Data(), b.Data() + b.Length());
  }
  Napi::Array list(const char* name, size_t max) const {
    Napi::Value v = get(name);
    if (!v.IsArray()) fail(name, "must be an array");
    Napi::Array a = v.As<Napi::Array>();
    if (a.Length() > max) fail(name, "has over " + std::to_string(max) + " entries");
    return a;
  }
  std::string at(const char* name) const { return what_ + "." + name; }

  [[noreturn]] void fail(const std::string& name, const std::string& why) const {
    throw Napi::TypeError::New(env_, (name.empty() ? what_ : what_ + "." + name) + " " + why);
  }

 private:
  Napi::Env env_;
  std::string what_;
  Napi::Object o_;
};

constexpr int64_t kU32 = 0xffffffffLL;
constexpr int64_t kMaxSafe = (1LL << 53) - 1;

Napi::Array signals_to_js(Napi::Env env, const std::vector<std::vector<uint8_t>>& infos) {
  Napi::Array a = Napi::Array::New(env, infos.size());
  for (size_t i = 0; i < infos.size(); ++i) a.Set(i, Napi::Buffer<uint8_t>::Copy(env, infos[i].data(), infos[i].size()));
  return a;
}

std::vector<std::vector<uint8_t>> signals_from_js(const Reader& r, const char* name) {
  Napi::Array a = r.list(name, kMaxPendingSignals);
  std::vector<std::vector<uint8_t>> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value v = a.Get(i);
    if (!v.IsBuffer() || v.As<Napi::Buffer<uint8_t>>().Length() != kSiginfoSize)
      r.fail(name, "entries must be Buffers of " + std::to_string(kSiginfoSize) + " bytes (siginfo_t)");
    auto b = v.As<Napi::Buffer<uint8_t>>();
    out.emplace_back(b.Data(), b.Data() + b.Length());
  }
  return out;
}

}  // namespace

Napi::Object thread_process_state_to_js(Napi::Env env, const ThreadProcessState& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("nice", Napi::Number::New(env, s.nice));
  o.Set("policy", Napi::Number::New(env, s.policy));
  o.Set("rtPriority", Napi::Number::New(env, s.rt_priority));
  Napi::Array aff = Napi::Array::New(env, s.affinity.size());
  for (size_t i = 0; i < s.affinity.size(); ++i) aff.Set(i, Napi::BigInt::New(env, s.affinity[i]));
  o.Set("affinity", aff);
  o.Set("pdeathSignal", Napi::Number::New(env, s.pdeath_signal));
  o.Set("pendingSignals", signals_to_js(env, s.pending_signals));
  return o;
}

ThreadProcessState thread_process_state_from_js(const Napi::Value& v, const std::string& what) {
  Reader r(v, what);
  ThreadProcessState s;
  s.nice = (int32_t)r.integer("nice", -20, 19);
  s.policy = (uint32_t)r.integer("policy", 0, kU32);
  s.rt_priority = (uint32_t)r.integer("rtPriority", 0, 99);
  Napi::Array aff = r.list("affinity", 4096);
  for (uint32_t i = 0; i < aff.Length(); ++i) {
    Napi::Value w = aff.Get(i);
    if (!w.IsBigInt()) r.fail("affinity", "entries must be bigints");
    bool lossless = false;
    s.affinity.push_back(w.As<Napi::BigInt>().Uint64Value(&lossless));
    if (!lossless) r.fail("affinity", "entries must fit in 64 bits");
  }
  s.pdeath_signal = (uint32_t)r.integer("pdeathSignal", 0, 64);
  s.pending_signals = signals_from_js(r, "pendingSignals");
  return s;
}

Napi::Object process_state_to_js(Napi::Env env, const ProcessState& s) {
  Napi::Object o = Napi::Object::New(env);
  auto n = [&](double v) { return Napi::Number::New(env, v); };
  Napi::Array rl = Napi::Array::New(env, s.rlimits.size());
  for (size_t i = 0; i < s.rlimits.size(); ++i) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("cur", Napi::BigInt::New(env, s.rlimits[i].cur));
    e.Set("max", Napi::BigInt::New(env, s.rlimits[i].max));
    rl.Set(i, e);
  }
  o.Set("rlimits", rl);
  Napi::Array it = Napi::Array::New(env, 3);
  for (uint32_t i = 0; i < 3; ++i) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("intervalUs", n((double)s.itimers[i].interval_us));
    e.Set("valueUs", n((double)s.itimers[i].value_us));
    it.Set(i, e);
  }
  o.Set("itimers", it);
  Napi::Array pt = Napi::Array::New(env, s.posix_timers.size());
  for (size_t i = 0; i < s.posix_timers.size(); ++i) {
    const PosixTimer& t = s.posix_timers[i];
    Napi::Object e = Napi::Object::New(env);
    e.Set("id", n(t.id));
    e.Set("clock", n(t.clock));
    e.Set("signo", n(t.signo));
    e.Set("notify", n(t.notify));
    e.Set("notifyTid", n(t.notify_tid));
    e.Set("sigval", Napi::BigInt::New(env, t.sigval));
    e.Set("overrun", n(t.overrun));
    e.Set("intervalNs", n((double)t.interval_ns));
    e.Set("valueNs", n((double)t.value_ns));
    pt.Set(i, e);
  }
  o.Set("posixTimers", pt);
  o.Set("sharedSignals", signals_to_js(env, s.shared_signals));
  o.Set("oomScoreAdj", n(s.oom_score_adj));
  o.Set("childSubreaper", Napi::Boolean::New(env, s.child_subreaper));
  o.Set("noNewPrivs", Napi::Boolean::New(env, s.no_new_privs));
  Napi::Array sc = Napi::Array::New(env, s.seccomp.size());
  for (size_t i = 0; i < s.seccomp.size(); ++i) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("insns", Napi::Buffer<uint8_t>::Copy(env, s.seccomp[i].insns.data(), s.seccomp[i].insns.size()));
    e.Set("flags", n(s.seccomp[i].flags));
    sc.Set(i, e);
  }
  o.Set("seccomp", sc);
  Napi::Object c = Napi::Object::New(env);
  c.Set("inheritable", Napi::BigInt::New(env, s.caps.inheritable));
  c.Set("permitted", Napi::BigInt::New(env, s.caps.permitted));
  c.Set("effective", Napi::BigInt::New(env, s.caps.effective));
  c.Set("bounding", Napi::BigInt::New(env, s.caps.bounding));
  c.Set("ambient", Napi::BigInt::New(env, s.caps.ambient));
  c.Set("securebits", n(s.caps.securebits));
  o.Set("caps", c);
  return o;
}

ProcessState process_state_from_js(const Napi::Value& v) {
  Reader r(v, "processState");
  ProcessState s;
  s.saved = true;
  Napi::Array rl = r.list("rlimits", kNumRlimits);
  for (uint32_t i = 0; i < rl.Length(); ++i) {
    Reader e(rl.Get(i), r.at("rlimits"));
    s.rlimits.push_back(Rlimit{e.u64("cur"), e.u64("max")});
  }
  Napi::Array it = r.list("itimers", 3);
  if (it.Length() != 3) r.fail("itimers", "must hold ITIMER_REAL, ITIMER_VIRTUAL and ITIMER_PROF");
  for (uint32_t i = 0; i < 3; ++i) {
    Reader e(it.Get(i), r.at("itimers"));
    s.itimers[i] = IntervalTimer{(uint64_t)e.integer("intervalUs", 0, kMaxSafe), (uint64_t)e.integer("valueUs", 0, kMaxSafe)};
  }
  Napi::Array pt = r.list("posixTimers", kMaxPosixTimers);
  for (uint32_t i = 0; i < pt.Length(); ++i) {
    Reader e(pt.Get(i), r.at("posixTimers"));
    PosixTimer t;
    t.id = (int32_t)e.integer("id", 0, INT32_MAX);
    t.clock = (int32_t)e.integer("clock", INT32_MIN, INT32_MAX);
    t.signo = (int32_t)e.integer("signo", 0, 64);
    t.notify = (int32_t)e.integer("notify", 0, INT32_MAX);
    t.notify_tid = (int32_t)e.integer("notifyTid", 0, INT32_MAX);
    t.sigval = e.u64("sigval");
    t.overrun = (uint32_t)e.integer("overrun", 0, kU32);
    t.interval_ns = (uint64_t)e.integer("intervalNs", 0, kMaxSafe);
    t.value_ns = (uint64_t)e.integer("valueNs", 0, kMaxSafe);
    s.posix_timers.push_back(t);
  }
  s.shared_signals = signals_from_js(r, "sharedSignals");
  s.oom_score_adj = (int32_t)r.integer("oomScoreAdj", -1000, 1000);
  s.child_subreaper = r.flag("childSubreaper");
  s.no_new_privs = r.flag("noNewPrivs");
  Napi::Array sc = r.list("seccomp", kMaxSeccompFilters);
  for (uint32_t i = 0; i < sc.Length(); ++i) {
    Reader e(sc.Get(i), r.at("seccomp"));
    SeccompFilter f;
    f.insns = e.bytes("insns", kMaxSeccompInsns * 8);
    if (f.insns.empty() || f.insns.size() % 8 != 0) e.fail("insns", "must be whole BPF instructions (8 bytes each)");
    f.flags = (uint32_t)e.integer("flags", 0, kU32);
    s.seccomp.push_back(std::move(f));
  }
  Reader c(r.get("caps"), r.at("caps"));
  s.caps = Capabilities{c.u64("inheritable"), c.u64("permitted"), c.u64("effective"), c.u64("bounding"), c.u64("ambient"),
                        (uint32_t)c.integer("securebits", 0, kU32)};
  return s;
}

}  // namespace cryopod
