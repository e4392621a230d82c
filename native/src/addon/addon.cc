// N-API glue: two async functions, each a Napi::AsyncWorker returning a Promise.
//   dump({ pid, pagesPath, leaveRunning, stopAfter, parasitePath?, pipes?, freezer?: { kind, path } })            → Promise<DumpedTask>
//   restore({ task, pagesPath, stubPath, uid?, gid? }) → Promise<number>  (the new PID)
// Inputs are copied onto the worker before Execute() (which runs on a pool thread and must not touch JS);
// nothing throws out of Execute(): a CoreError becomes an Error with .code and .errno.
#include <napi.h>

#include "../core/dump.h"
#include "../core/errors.h"
#include "../core/parasite_check.h"
#include "../core/restore.h"
#include "../core/dump_tree.h"
#include "../core/restore_tree.h"
#include "convert.h"

namespace cryopod {

namespace {

struct Failure {
  bool failed = false;
  std::string code, message;
  int err = 0;
};

template <typename Fn>
void run_guarded(Failure& f, Fn fn) {
  try {
    fn();
  } catch (const CoreError& e) {
    f = Failure{true, e.code(), e.what(), e.err()};
  } catch (const std::exception& e) {
    f = Failure{true, "EINTERNAL", e.what(), 0};
  }
}

Napi::Error to_js_error(Napi::Env env, const Failure& f) {
  Napi::Error e = Napi::Error::New(env, f.message);
  e.Set("code", f.code);
  if (f.err) e.Set("errno", Napi::Number::New(env, f.err));
  return e;
}

class DumpWorker : public Napi::AsyncWorker {
 public:
  DumpWorker(Napi::Env env, DumpRequest req)
      : Napi::AsyncWorker(env), req_(std::move(req)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { run_guarded(failure_, [&] { result_ = dump_task(req_); }); }
  void OnOK() override {
    Napi::Env env = Env();
    if (failure_.failed) return deferred_.Reject(to_js_error(env, failure_).Value());
    deferred_.Resolve(task_to_js(env, result_));
  }

 private:
  DumpRequest req_;
  TaskImage result_;
  Failure failure_;
  Napi::Promise::Deferred deferred_;
};

class RestoreWorker : public Napi::AsyncWorker {
 public:
  RestoreWorker(Napi::Env env, TaskImage image, RestoreRequest req)
      : Napi::AsyncWorker(env), image_(std::move(image)), req_(std::move(req)),
        deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { run_guarded(failure_, [&] { pid_ = restore_task(image_, req_); }); }
  void OnOK() override {
    Napi::Env env = Env();
    if (failure_.failed) return deferred_.Reject(to_js_error(env, failure_).Value());
    deferred_.Resolve(Napi::Number::New(env, pid_));
  }

 private:
  TaskImage image_;
  RestoreRequest req_;
  Failure failure_;
  int pid_ = 0;
  Napi::Promise::Deferred deferred_;
};

class ParasiteCheckWorker : public Napi::AsyncWorker {
 public:
  ParasiteCheckWorker(Napi::Env env, int pid, std::string blob, int iterations)
      : Napi::AsyncWorker(env), pid_(pid), blob_(std::move(blob)), iterations_(iterations),
        deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { run_guarded(failure_, [&] { result_ = parasite_round_trips(pid_, blob_, iterations_); }); }
  void OnOK() override {
    Napi::Env env = Env();
    if (failure_.failed) return deferred_.Reject(to_js_error(env, failure_).Value());
    Napi::Object o = Napi::Object::New(env);
    o.Set("iterations", result_.iterations);
    o.Set("regsChanged", result_.regs_changed);
    o.Set("xsaveChanged", result_.xsave_changed);
    o.Set("wrongPid", result_.wrong_pid);
    deferred_.Resolve(o);
  }

 private:
  int pid_;
  std::string blob_;
  int iterations_;
  ParasiteCheck result_;
  Failure failure_;
  Napi::Promise::Deferred deferred_;
};

class DumpTreeWorker : public Napi::AsyncWorker {
 public:
  DumpTreeWorker(Napi::Env env, TreeDumpRequest req)
      : Napi::AsyncWorker(env), req_(std::move(req)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { run_guarded(failure_, [&] { result_ = dump_tree(req_); }); }
  void OnOK() override {
    Napi::Env env = Env();
    if (failure_.failed) return deferred_.Reject(to_js_error(env, failure_).Value());
    deferred_.Resolve(tree_to_js(env, result_));
  }

 private:
  TreeDumpRequest req_;
  TreeImage result_;
  Failure failure_;
  Napi::Promise::Deferred deferred_;
};

class RestoreTreeWorker : public Napi::AsyncWorker {
 public:
  RestoreTreeWorker(Napi::Env env, TreeImage tree, TreeRestoreRequest req)
      : Napi::AsyncWorker(env), tree_(std::move(tree)), req_(std::move(req)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { run_guarded(failure_, [&] { pid_ = restore_tree(tree_, req_); }); }
  void OnOK() override {
    Napi::Env env = Env();
    if (failure_.failed) return deferred_.Reject(to_js_error(env, failure_).Value());
    deferred_.Resolve(Napi::Number::New(env, pid_));
  }

 private:
  TreeImage tree_;
  TreeRestoreRequest req_;
  Failure failure_;
  int pid_ = 0;
  Napi::Promise::Deferred deferred_;
};

Napi::Object options(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(info.Env(), "expected an options object");
  return info[0].As<Napi::Object>();
}

std::string str_opt(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(name) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

Napi::Value Dump(const Napi::CallbackInfo& info) {
  Napi::Object o = options(info);
  DumpRequest req;
  Napi::Value pid = o.Get("pid");
  if (!pid.IsNumber()) throw Napi::TypeError::New(info.Env(), "pid must be a number");
  req.pid = pid.As<Napi::Number>().Int32Value();
  req.pages_path = str_opt(o, "pagesPath");
  req.leave_running = o.Get("leaveRunning").ToBoolean().Value();
  req.stop_after = o.Get("stopAfter").ToBoolean().Value();
  if (o.Get("parasitePath").IsString()) req.parasite_path = o.Get("parasitePath").As<Napi::String>().Utf8Value();
  if (o.Get("pipes").IsNumber()) req.nr_pipes = o.Get("pipes").As<Napi::Number>().Uint32Value();
  req.snapshot = o.Get("snapshot").ToBoolean().Value();
  Napi::Value fz = o.Get("freezer");
  if (fz.IsObject()) {
    Napi::Object f = fz.As<Napi::Object>();
    std::string kind = str_opt(f, "kind");
    if (kind != "v1" && kind != "v2") throw Napi::TypeError::New(info.Env(), "freezer.kind must be v1 or v2");
    req.freezer_kind = kind == "v1" ? FreezerKind::V1 : FreezerKind::V2;
    req.freezer_dir = str_opt(f, "path");
  }
  auto* w = new DumpWorker(info.Env(), std::move(req));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value Restore(const Napi::CallbackInfo& info) {
  Napi::Object o = options(info);
  Napi::Value task = o.Get("task");
  if (!task.IsObject()) throw Napi::TypeError::New(info.Env(), "task must be an object");
  TaskImage image = task_from_js(task.As<Napi::Object>());
  RestoreRequest req;
  req.pages_path = str_opt(o, "pagesPath");
  req.stub_path = str_opt(o, "stubPath");
  if (o.Get("uid").IsNumber()) req.uid = o.Get("uid").As<Napi::Number>().Int64Value();
  if (o.Get("gid").IsNumber()) req.gid = o.Get("gid").As<Napi::Number>().Int64Value();
  if (o.Get("stubPid").IsNumber()) req.stub_pid = o.Get("stubPid").As<Napi::Number>().Int32Value();
  auto* w = new RestoreWorker(info.Env(), std::move(image), std::move(req));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// parasiteRoundTrips({ pid, parasitePath, iterations }) → Promise<{ iterations, regsChanged, xsaveChanged, wrongPid }>
Napi::Value ParasiteRoundTrips(const Napi::CallbackInfo& info) {
  Napi::Object o = options(info);
  Napi::Value pid = o.Get("pid"), n = o.Get("iterations");
  if (!pid.IsNumber() || !n.IsNumber()) throw Napi::TypeError::New(info.Env(), "pid and iterations must be numbers");
  auto* w = new ParasiteCheckWorker(info.Env(), pid.As<Napi::Number>().Int32Value(), str_opt(o, "parasitePath"),
                                    n.As<Napi::Number>().Int32Value());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// dumpTree({ pid, pagesDir, leaveRunning, stopAfter, parasitePath?, pipes?, freezer? }) → Promise<DumpedTree>
Napi::Value DumpTree(const Napi::CallbackInfo& info) {
  Napi::Object o = options(info);
  TreeDumpRequest req;
  Napi::Value pid = o.Get("pid");
  if (!pid.IsNumber()) throw Napi::TypeError::New(info.Env(), "pid must be a number");
  req.root_pid = pid.As<Napi::Number>().Int32Value();
  req.pages_dir = str_opt(o, "pagesDir");
  req.leave_running = o.Get("leaveRunning").ToBoolean().Value();
  req.stop_after = o.Get("stopAfter").ToBoolean().Value();
  if (o.Get("parasitePath").IsString()) req.parasite_path = o.Get("parasitePath").As<Napi::String>().Utf8Value();
  if (o.Get("pipes").IsNumber()) req.nr_pipes = o.Get("pipes").As<Napi::Number>().Uint32Value();
  Napi::Value fz = o.Get("freezer");
  if (fz.IsObject()) {
    Napi::Object f = fz.As<Napi::Object>();
    std::string kind = str_opt(f, "kind");
    if (kind != "v1" && kind != "v2") throw Napi::TypeError::New(info.Env(), "freezer.kind must be v1 or v2");
    req.freezer_kind = kind == "v1" ? FreezerKind::V1 : FreezerKind::V2;
    req.freezer_dir = str_opt(f, "path");
  }
  auto* w = new DumpTreeWorker(info.Env(), std::move(req));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// restoreTree({ tree, pagesPaths, stubPath, uid?, gid? }) → Promise<number> (the root's pid)
Napi::Value RestoreTree(const Napi::CallbackInfo& info) {
  Napi::Object o = options(info);
  Napi::Value tree = o.Get("tree");
  if (!tree.IsObject()) throw Napi::TypeError::New(info.Env(), "tree must be an object");
  TreeImage image = tree_from_js(tree.As<Napi::Object>());
  TreeRestoreRequest req;
  Napi::Value paths = o.Get("pagesPaths");
  if (!paths.IsArray()) throw Napi::TypeError::New(info.Env(), "pagesPaths must be an array");
  Napi::Array arr = paths.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    if (!arr.Get(i).IsString()) throw Napi::TypeError::New(info.Env(), "pagesPaths must hold strings");
    req.pages_paths.push_back(arr.Get(i).As<Napi::String>().Utf8Value());
  }
  req.stub_path = str_opt(o, "stubPath");
  if (o.Get("uid").IsNumber()) req.uid = o.Get("uid").As<Napi::Number>().Int64Value();
  if (o.Get("gid").IsNumber()) req.gid = o.Get("gid").As<Napi::Number>().Int64Value();
  auto* w = new RestoreTreeWorker(info.Env(), std::move(image), std::move(req));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("dumpTree", Napi::Function::New(env, DumpTree, "dumpTree"));
  exports.Set("restoreTree", Napi::Function::New(env, RestoreTree, "restoreTree"));
  exports.Set("parasiteRoundTrips", Napi::Function::New(env, ParasiteRoundTrips, "parasiteRoundTrips"));
  exports.Set("dump", Napi::Function::New(env, Dump, "dump"));
  exports.Set("restore", Napi::Function::New(env, Restore, "restore"));
  return exports;
}

}  // namespace

NODE_API_MODULE(cryopod, Init)

}  // namespace cryopod
