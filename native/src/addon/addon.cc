// N-API glue: every function checks and copies its arguments on the JS thread, runs the core on a pool
// thread (PromiseWorker) and returns a Promise.
//   dump({ pid, pagesPath, leaveRunning, stopAfter, parasitePath?, pipes?, freezer?, snapshot? }) → DumpedTask
//   restore({ task, pagesPath, stubPath, uid?, gid?, stubPid?, pagesDigest?, lazy? })            → pid
//                                                   (lazy: { prefetch? } → { pid, pager?, eagerReason? })
//   lazyWait({ pager }) → residency; lazyAbort({ pager, reason }): a lazy restore's pager (lazy_pager.h)
//   dumpTree({ pid, pagesDir, leaveRunning, stopAfter, parasitePath?, pipes?, freezer? })        → DumpedTree
//   restoreTree({ tree, pagesPaths, stubPath, uid?, gid?, pagesDigests? })                       → root pid
//   hashFile({ path, algorithm, chunkBytes, withChunks? })          → hex (withChunks: { root, chunks } in hex)
// pagesDigest(s): { sha256 | blake3, chunkBytes? } of a pages image as the manifest lists it, for the images whose
// hash the caller left to the fill (page_fill.h): checked as the pages are written, before anything runs.
//   parasiteRoundTrips({ pid, parasitePath, iterations })                                        → counts
//   preflight({ pid })                         → [{ pid, fd, object, kind, verdict, note }] (reads /proc only)
//   rescue({ pid, childrenSince?, resumeStopped?, untracedTimeoutMs? })  → what a dead dumper's leftovers were (rescue.h)
// Nothing throws out of Execute(): a CoreError becomes an Error with .code, .errno, .op and .path.
#include <napi.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>

#include "../core/dump.h"
#include "../core/errors.h"
#include "../core/image_hash.h"
#include "../core/lazy_pager.h"
#include "../core/page_fill.h"
#include "../core/parasite_check.h"
#include "../core/rescue.h"
#include "../core/restore.h"
#include "file_state_js.h"
#include "../core/files/preflight.h"
#include "../core/dump_tree.h"
#include "../core/restore_tree.h"
#include "convert.h"

namespace cryopod {

namespace {

struct Failure {
  bool failed = false;
  std::string code, message;
  int err = 0;
  std::string op, path;
};

template <typename Fn>
void run_guarded(Failure& f, Fn fn) {
  try {
    fn();
  } catch (const CoreError& e) {
    f = Failure{true, e.code(), e.what(), e.err(), e.op(), e.path()};
  } catch (const std::exception& e) {
    f = Failure{true, "EINTERNAL", e.what(), 0, {}, {}};
  }
}

Napi::Error to_js_error(Napi::Env env, const Failure& f) {
  Napi::Error e = Napi::Error::New(env, f.message);
  e.Set("code", f.code);
  if (f.err) e.Set("errno", Napi::Number::New(env, f.err));
  if (!f.op.empty()) e.Set("op", f.op);
  if (!f.path.empty()) e.Set("path", f.path);
  return e;
}

// One operation on a pool thread. `work` owns copies of its inputs (made on the JS thread before it is
// queued) and must not touch JS; `to_js` turns its result into a value on the JS thread. Nothing throws
// out of Execute(): a failure rejects the promise with .code and .errno.
template <typename Result>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<Result()>;
  using ToJs = std::function<Napi::Value(Napi::Env, const Result&)>;

  static Napi::Promise Queue(Napi::Env env, Work work, ToJs to_js) {
    auto* w = new PromiseWorker(env, std::move(work), std::move(to_js));
    Napi::Promise p = w->deferred_.Promise();
    w->Napi::AsyncWorker::Queue();  // the worker deletes itself once OnOK has run
    return p;
  }

  void Execute() override { run_guarded(failure_, [&] { result_ = work_(); }); }
  void OnOK() override {
    Napi::Env env = Env();
    if (failure_.failed) return deferred_.Reject(to_js_error(env, failure_).Value());
    deferred_.Resolve(to_js_(env, result_));
  }

 private:
  PromiseWorker(Napi::Env env, Work work, ToJs to_js)
      : Napi::AsyncWorker(env), work_(std::move(work)), to_js_(std::move(to_js)), deferred_(Napi::Promise::Deferred::New(env)) {}

  Work work_;
  ToJs to_js_;
  Result result_{};
  Failure failure_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value pid_to_js(Napi::Env env, const int& pid) { return Napi::Number::New(env, pid); }

Napi::Object options(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(info.Env(), "expected an options object");
  return info[0].As<Napi::Object>();
}

std::string str_opt(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(name) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

int pid_opt(const Napi::Object& o) {
  Napi::Value pid = o.Get("pid");
  if (!pid.IsNumber()) throw Napi::TypeError::New(o.Env(), "pid must be a number");
  return pid.As<Napi::Number>().Int32Value();
}

// What dump and dumpTree share: { leaveRunning, stopAfter, parasitePath?, pipes?, freezer? } with
// freezer: { kind: 'v1' | 'v2', path }.
void read_dump_options(const Napi::Object& o, DumpOptions& req) {
  req.leave_running = o.Get("leaveRunning").ToBoolean().Value();
  req.stop_after = o.Get("stopAfter").ToBoolean().Value();
  if (o.Get("parasitePath").IsString()) req.parasite_path = o.Get("parasitePath").As<Napi::String>().Utf8Value();
  if (o.Get("pipes").IsNumber()) req.nr_pipes = o.Get("pipes").As<Napi::Number>().Uint32Value();
  if (o.Get("phaseFd").IsNumber()) req.phase_fd = o.Get("phaseFd").As<Napi::Number>().Int32Value();
  Napi::Value fz = o.Get("freezer");
  if (!fz.IsObject()) return;
  Napi::Object f = fz.As<Napi::Object>();
  std::string k = str_opt(f, "kind");
  if (k != "v1" && k != "v2") throw Napi::TypeError::New(o.Env(), "freezer.kind must be v1 or v2");
  req.freezer_kind = k == "v1" ? FreezerKind::V1 : FreezerKind::V2;
  req.freezer_dir = str_opt(f, "path");
}

// What restore and restoreTree share: { stubPath, uid?, gid?, stubPid?, inheritFds?, phaseFd? }.
template <typename Request>
void read_stub_options(const Napi::Object& o, Request& req) {
  req.stub_path = str_opt(o, "stubPath");
  if (o.Get("uid").IsNumber()) req.uid = o.Get("uid").As<Napi::Number>().Int64Value();
  if (o.Get("gid").IsNumber()) req.gid = o.Get("gid").As<Napi::Number>().Int64Value();
  if (o.Get("stubPid").IsNumber()) req.stub_pid = o.Get("stubPid").As<Napi::Number>().Int32Value();
  req.inherit = inherit_from_js(o.Get("inheritFds"));
  if (o.Get("phaseFd").IsNumber()) req.phase_fd = o.Get("phaseFd").As<Napi::Number>().Int32Value();
}

// The caller skipped hashing the pages images it registered: a restore whose fill did not verify one of
// them (a path that never called fill_pages) must not stand. A safety net for future restore paths, and
// a late one (the root is killed after it ran; a tree's children are not found here): today every
// task's memory goes through fill_pages, before anything runs.
int checked_restore(const PagesVerification& verify, int pid) {
  std::vector<std::string> missed = verify.unverified();
  if (missed.empty()) return pid;
  kill(pid, SIGKILL);
  throw CoreError("EINTERNAL", "restored pid " + std::to_string(pid) + " was killed: the pages image " + missed.front() +
                                   " was never verified against the manifest");
}

std::string from_hex(const std::string& hex) {
  std::string out(hex.size() / 2, '\0');
  auto nib = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (size_t i = 0; i < out.size(); ++i) out[i] = (char)(nib(hex[2 * i]) << 4 | nib(hex[2 * i + 1]));
  return out;
}

// A chunkBytes option: undefined (0), or an integer from 4096 to 2^30.
uint64_t chunk_opt(Napi::Value chunk, const char* what) {
  if (chunk.IsUndefined()) return 0;
  double c = chunk.IsNumber() ? chunk.As<Napi::Number>().DoubleValue() : -1;
  if (!(c >= 4096 && c <= (double)(1u << 30)) || c != (double)(uint64_t)c)
    throw Napi::TypeError::New(chunk.Env(), std::string(what) + ": chunkBytes must be an integer from 4096 to 2^30");
  return (uint64_t)c;
}

// { sha256 | blake3, chunkBytes? } → PagesDigest; false when the value is undefined (nothing to verify).
bool read_digest(Napi::Value v, PagesDigest& out) {
  if (v.IsUndefined() || v.IsNull()) return false;
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), "a pages digest must be an object");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Value sha = o.Get("sha256"), b3 = o.Get("blake3");
  if (sha.IsString() == b3.IsString()) throw Napi::TypeError::New(v.Env(), "pages digest: exactly one of sha256 and blake3 must be a string");
  out.algo = b3.IsString() ? HashAlgo::kBlake3 : HashAlgo::kSha256;
  out.hex = (b3.IsString() ? b3 : sha).As<Napi::String>().Utf8Value();
  if (out.hex.size() != 64 || out.hex.find_first_not_of("0123456789abcdef") != std::string::npos)
    throw Napi::TypeError::New(v.Env(), "pages digest: the hash must be 64 lower-case hex digits");
  out.chunk_bytes = chunk_opt(o.Get("chunkBytes"), "pages digest");
  if (out.algo == HashAlgo::kBlake3 && out.chunk_bytes == 0) throw Napi::TypeError::New(v.Env(), "pages digest: a blake3 digest is always chunked (chunkBytes)");
  Napi::Value chunks = o.Get("chunkBlake3");
  if (!chunks.IsUndefined()) {
    std::string hex = chunks.IsString() ? chunks.As<Napi::String>().Utf8Value() : std::string("?");
    if (out.algo != HashAlgo::kBlake3 || hex.empty() || hex.size() % 64 != 0 || hex.find_first_not_of("0123456789abcdef") != std::string::npos)
      throw Napi::TypeError::New(v.Env(), "pages digest: chunkBlake3 must be blake3 chunk digests, 64 lower-case hex digits each");
    out.chunks = from_hex(hex);
  }
  return true;
}

// hashFile({ path, algorithm: 'blake3' | 'sha256', chunkBytes }) → hex: the chunked root (image_hash.h),
// chunks on every core; for the manifest's verifier and seal, which check a pages image without a fill.
Napi::Value HashFile(const Napi::CallbackInfo& info) {
  Napi::Object o = options(info);
  std::string path = str_opt(o, "path"), algo = str_opt(o, "algorithm");
  if (algo != "blake3" && algo != "sha256") throw Napi::TypeError::New(info.Env(), "algorithm must be blake3 or sha256");
  uint64_t chunk = chunk_opt(o.Get("chunkBytes"), "hashFile");
  if (chunk == 0) throw Napi::TypeError::New(info.Env(), "hashFile: chunkBytes is required");
  HashAlgo a = algo == "blake3" ? HashAlgo::kBlake3 : HashAlgo::kSha256;
  bool with_chunks = o.Get("withChunks").ToBoolean().Value();
  struct Hashed {
    std::string root, chunks;
  };
  return PromiseWorker<Hashed>::Queue(
      info.Env(),
      [path, chunk, a, with_chunks] {
        int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) throw_errno_at("open", path);
        struct FdCloser {
          int fd;
          ~FdCloser() { close(fd); }
        } closer{fd};
        struct stat st {};
        if (fstat(fd, &st) != 0) throw_errno_at("stat", path);
        Hashed h;
        h.root = hash_file_chunked(fd, (uint64_t)st.st_size, chunk, a, path, with_chunks ? &h.chunks : nullptr);
        return h;
      },
      [with_chunks](Napi::Env env, const Hashed& h) -> Napi::Value {
        if (!with_chunks) return Napi::String::New(env, h.root);
        Napi::Object out = Napi::Object::New(env);
        out.Set("root", h.root);
        out.Set("chunks", to_hex(h.chunks));
        return out;
      });
}

Napi::Value Dump(const Napi::CallbackInfo& info) {
  Napi::Object o = options(info);
  DumpRequest req;
  req.pid = pid_opt(o);
  req.pages_path = str_opt(o, "pagesPath");
  read_dump_options(o, req);
  req.snapshot = o.Get("snapshot").ToBoolean().Value();
  return PromiseWorker<TaskImage>::Queue(info.Env(), [req = std::move(req)] { return dump_task(req); }, task_to_js);
}

// The pagers of lazy restores still serving, by handle. They outlive the restore call; one destroyed
// before its task is resident (the process exiting) kills that task (lazy_pager.h).
std::mutex pagers_mu;
std::map<uint32_t, std::shared_ptr<LazyPager>>& pagers() {
  static auto* m = new std::map<uint32_t, std::shared_ptr<LazyPager>>();  // never destroyed: see below
  return *m;
}
uint32_t next_pager = 1;

uint32_t keep_pager(std::unique_ptr<LazyPager> p) {
  std::lock_guard<std::mutex> lock(pagers_mu);
  uint32_t id = next_pager++;
  pagers()[id] = std::shared_ptr<LazyPager>(std::move(p));
  return id;
}

std::shared_ptr<LazyPager> find_pager(Napi::Value v) {
  std::lock_guard<std::mutex> lock(pagers_mu);
  auto it = v.IsNumber() ? pagers().find(v.As<Napi::Number>().Uint32Value()) : pagers().end();
  if (it == pagers().end()) throw Napi::TypeError::New(v.Env(), "no lazy restore with that pager handle (already waited for?)");
  return it->second;
}

void drop_pager(uint32_t id) {
  std::lock_guard<std::mutex> lock(pagers_mu);
  pagers().erase(id);
}

// At exit the pagers still serving kill their tasks: their threads cannot outlive the process, and
// without them the tasks would fault in zero pages where their data should be.
struct KillUnservedAtExit {
  ~KillUnservedAtExit() {
    std::lock_guard<std::mutex> lock(pagers_mu);
    for (auto& [id, p] : pagers()) p->abort("the restoring process exited");
  }
} kill_unserved_at_exit;

Napi::Value Restore(const Napi::CallbackInfo& info) {
  Napi::Object o = options(info);
  Napi::Value task = o.Get("task");
  if (!task.IsObject()) throw Napi::TypeError::New(info.Env(), "task must be an object");
  TaskImage image = task_from_js(task.As<Napi::Object>());
  RestoreRequest req;
  req.pages_path = str_opt(o, "pagesPath");
  read_stub_options(o, req);
  std::map<std::string, PagesDigest> digests;
  PagesDigest d;
  if (read_digest(o.Get("pagesDigest"), d)) digests[req.pages_path] = d;
  // lazy: { prefetch? } (lazy_pager.h): resolves to { pid, pager?, eagerReason? } instead of the pid.
  Napi::Value lz = o.Get("lazy");
  bool lazy = lz.IsObject();
  // CRYOPOD_LAZY_PREFETCH=0 (tests of the CLI, benchmarks): pages come in on fault only, unless the call says.
  const char* knob = std::getenv("CRYOPOD_LAZY_PREFETCH");
  bool prefetch = !(knob && std::string(knob) == "0");
  if (lazy && lz.As<Napi::Object>().Get("prefetch").IsBoolean()) prefetch = lz.As<Napi::Object>().Get("prefetch").ToBoolean().Value();
  struct Restored {
    int pid = 0;
    uint32_t pager = 0;
    std::string eager_reason;
  };
  return PromiseWorker<Restored>::Queue(
      info.Env(),
      [image = std::move(image), req = std::move(req), digests = std::move(digests), lazy, prefetch]() mutable {
        PagesVerification verify(digests);
        req.verify = &verify;  // the fill finds the digest in its request
        LazyRequest lr;
        lr.prefetch = prefetch;
        if (lazy) req.lazy = &lr;
        Restored r;
        r.pid = checked_restore(verify, restore_task(image, req));
        if (lr.pager) r.pager = keep_pager(std::move(lr.pager));
        r.eager_reason = lr.eager_reason;
        return r;
      },
      [lazy](Napi::Env env, const Restored& r) -> Napi::Value {
        if (!lazy) return Napi::Number::New(env, r.pid);
        Napi::Object out = Napi::Object::New(env);
        out.Set("pid", r.pid);
        if (r.pager) out.Set("pager", r.pager);
        if (!r.eager_reason.empty()) out.Set("eagerReason", r.eager_reason);
        return out;
      });
}

// lazyWait({ pager }) → Promise<{ state: 'resident' | 'exited', chunks, ... }>: resolves once the task is fully
// resident (or exited on its own); rejects with .code (ECHECKSUM, EBOUNDS, EIO, EABORTED) and .path when
// the pager killed it. The pager is dropped either way.
Napi::Value LazyWait(const Napi::CallbackInfo& info) {
  Napi::Object o = options(info);
  std::shared_ptr<LazyPager> pager = find_pager(o.Get("pager"));
  return PromiseWorker<LazyStatus>::Queue(
      info.Env(),
      [pager, id = o.Get("pager").As<Napi::Number>().Uint32Value()] {
        LazyStatus s = pager->wait();
        drop_pager(id);
        if (s.state == LazyStatus::State::kFailed) throw CoreError(s.code, s.message, 0, s.code == "ECHECKSUM" ? "verify" : "serve", s.path);
        return s;
      },
      [](Napi::Env env, const LazyStatus& s) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("state", s.state == LazyStatus::State::kResident ? "resident" : "exited");
        out.Set("chunks", (double)s.chunks);
        out.Set("eagerChunks", (double)s.chunks_eager);
        out.Set("faultChunks", (double)s.chunks_on_fault);
        out.Set("prefetchedChunks", (double)s.chunks_prefetched);
        out.Set("faults", (double)s.faults);
        out.Set("zeroFaults", (double)s.zero_faults);
        out.Set("residentSeconds", s.resident_seconds);
        return out;
      });
}

// lazyAbort({ pager, reason }): kills a task not yet resident (the server is going away); lazyWait rejects.
Napi::Value LazyAbort(const Napi::CallbackInfo& info) {
  Napi::Object o = options(info);
  find_pager(o.Get("pager"))->abort(str_opt(o, "reason"));
  return info.Env().Undefined();
}

// parasiteRoundTrips({ pid, parasitePath, iterations }) → Promise<{ iterations, regsChanged, xsaveChanged, wrongPid }>
Napi::Value ParasiteRoundTrips(const Napi::CallbackInfo& info) {
  Napi::Object o = options(info);
  Napi::Value pid = o.Get("pid"), n = o.Get("iterations");
  if (!pid.IsNumber() || !n.IsNumber()) throw Napi::TypeError::New(info.Env(), "pid and iterations must be numbers");
  int task = pid.As<Napi::Number>().Int32Value(), iterations = n.As<Napi::Number>().Int32Value();
  std::string blob = str_opt(o, "parasitePath");
  return PromiseWorker<ParasiteCheck>::Queue(
      info.Env(), [task, blob, iterations] { return parasite_round_trips(task, blob, iterations); },
      [](Napi::Env env, const ParasiteCheck& c) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("iterations", c.iterations);
        out.Set("regsChanged", c.regs_changed);
        out.Set("xsaveChanged", c.xsave_changed);
        out.Set("wrongPid", c.wrong_pid);
        return out;
      });
}

// dumpTree({ pid, pagesDir, leaveRunning, stopAfter, parasitePath?, pipes?, freezer? }) → Promise<DumpedTree>
Napi::Value DumpTree(const Napi::CallbackInfo& info) {
  Napi::Object o = options(info);
  TreeDumpRequest req;
  req.root_pid = pid_opt(o);
  req.pages_dir = str_opt(o, "pagesDir");
  read_dump_options(o, req);
  return PromiseWorker<TreeImage>::Queue(info.Env(), [req = std::move(req)] { return dump_tree(req); }, tree_to_js);
}

// restoreTree({ tree, pagesPaths, stubPath, uid?, gid?, stubPid? }) → Promise<number> (the root's pid)
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
  read_stub_options(o, req);
  std::map<std::string, PagesDigest> digests;
  Napi::Value dv = o.Get("pagesDigests");
  if (!dv.IsUndefined()) {
    if (!dv.IsArray() || dv.As<Napi::Array>().Length() != req.pages_paths.size())
      throw Napi::TypeError::New(info.Env(), "pagesDigests must hold one entry (or undefined) per pages path");
    Napi::Array da = dv.As<Napi::Array>();
    for (uint32_t i = 0; i < da.Length(); ++i) {
      PagesDigest d;
      if (read_digest(da.Get(i), d)) digests[req.pages_paths[i]] = d;
    }
  }
  return PromiseWorker<int>::Queue(
      info.Env(),
      [image = std::move(image), req = std::move(req), digests = std::move(digests)]() mutable {
        PagesVerification verify(digests);
        req.verify = &verify;
        return checked_restore(verify, restore_tree(image, req));
      },
      pid_to_js);
}

// preflight({ pid }) → Promise<FdReport[]>: every fd of the tree and whether it can be saved.
Napi::Value Preflight(const Napi::CallbackInfo& info) {
  Napi::Object o = options(info);
  Napi::Value pid = o.Get("pid");
  if (!pid.IsNumber()) throw Napi::TypeError::New(info.Env(), "pid must be a number");
  int root = pid.As<Napi::Number>().Int32Value();
  return PromiseWorker<std::vector<FdReport>>::Queue(
      info.Env(),
      [root] {
        if (root <= 0 || kill(root, 0) != 0) throw CoreError("ESRCH", "no such process: " + std::to_string(root));
        return preflight_tree(root);
      },
      reports_to_js);
}

// rescue({ pid, childrenSince?, resumeStopped?, untracedTimeoutMs? }) → Promise<RescueReport>.
Napi::Value Rescue(const Napi::CallbackInfo& info) {
  Napi::Object o = options(info);
  RescueRequest req;
  req.pid = pid_opt(o);
  if (req.pid <= 0) throw Napi::TypeError::New(info.Env(), "pid must be a positive integer");
  if (o.Get("childrenSince").IsNumber()) req.children_since = (uint64_t)o.Get("childrenSince").As<Napi::Number>().Int64Value();
  req.resume_stopped = o.Get("resumeStopped").ToBoolean().Value();
  if (o.Get("untracedTimeoutMs").IsNumber()) req.untraced_timeout_ms = o.Get("untracedTimeoutMs").As<Napi::Number>().Int32Value();
  return PromiseWorker<RescueReport>::Queue(
      info.Env(), [req] { return rescue_task(req); },
      [](Napi::Env env, const RescueReport& r) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("gone", r.gone);
        out.Set("infected", r.infected);
        out.Set("registersRestored", r.registers_restored);
        out.Set("threadsRestored", r.threads_restored);
        out.Set("fdsClosed", r.fds_closed);
        out.Set("childrenReaped", r.children_reaped);
        out.Set("resumed", r.resumed);
        return out;
      });
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("rescue", Napi::Function::New(env, Rescue, "rescue"));
  exports.Set("preflight", Napi::Function::New(env, Preflight, "preflight"));
  exports.Set("dumpTree", Napi::Function::New(env, DumpTree, "dumpTree"));
  exports.Set("restoreTree", Napi::Function::New(env, RestoreTree, "restoreTree"));
  exports.Set("parasiteRoundTrips", Napi::Function::New(env, ParasiteRoundTrips, "parasiteRoundTrips"));
  exports.Set("dump", Napi::Function::New(env, Dump, "dump"));
  exports.Set("hashFile", Napi::Function::New(env, HashFile, "hashFile"));
  exports.Set("restore", Napi::Function::New(env, Restore, "restore"));
  exports.Set("lazyWait", Napi::Function::New(env, LazyWait, "lazyWait"));
  exports.Set("lazyAbort", Napi::Function::New(env, LazyAbort, "lazyAbort"));
  return exports;
}

}  // namespace

NODE_API_MODULE(cryopod, Init)

}  // namespace cryopod
