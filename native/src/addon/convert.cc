// TaskImage and TreeImage ↔ DumpedTask and DumpedTree (native/lib/types.ts): the task's own fields here,
// each nested struct through its converter pair (convert_parts.h).
#include "convert.h"

#include "convert_fields.h"
#include "convert_parts.h"
#include "process_state_js.h"

namespace cryopod {

using namespace js;

namespace {

constexpr std::pair<const char*, uint32_t Creds::*> kCredsFields[] = {
    {"uid", &Creds::uid}, {"euid", &Creds::euid}, {"suid", &Creds::suid}, {"fsuid", &Creds::fsuid},
    {"gid", &Creds::gid}, {"egid", &Creds::egid}, {"sgid", &Creds::sgid}, {"fsgid", &Creds::fsgid},
};

Napi::Object creds_to_js(Napi::Env env, const Creds& c) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto& [name, member] : kCredsFields) o.Set(name, num(env, c.*member));
  return o;
}

// The credentials the dump saw. A restore never sets them (the stub keeps its own: no privilege is
// gained), so images that omit them still restore.
Creds creds_from_js(const Napi::Object& o) {
  Creds c;
  for (const auto& [name, member] : kCredsFields) c.*member = (uint32_t)get_num(o, name);
  return c;
}

Napi::Object sigaction_to_js(Napi::Env env, const SigAction& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("signo", num(env, s.signo));
  o.Set("handler", big(env, s.handler));
  o.Set("flags", big(env, s.flags));
  o.Set("restorer", big(env, s.restorer));
  o.Set("mask", big(env, s.mask));
  return o;
}

SigAction sigaction_from_js(const Napi::Object& o) {
  return SigAction{(int)get_num(o, "signo"), get_big(o, "handler"), get_big(o, "flags"), get_big(o, "restorer"),
                   get_big(o, "mask")};
}

// An extra thread: its tid beside the per-thread fields.
Napi::Object extra_thread_to_js(Napi::Env env, const ThreadState& th) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("tid", num(env, th.tid));
  thread_to_js(env, th, o);
  return o;
}

ThreadState extra_thread_from_js(const Napi::Object& o) { return thread_from_js(o, (int)get_num(o, "tid")); }

}  // namespace

Napi::Object task_to_js(Napi::Env env, const TaskImage& t) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", num(env, t.pid));
  o.Set("ppid", num(env, t.ppid));
  o.Set("pgid", num(env, t.pgid));
  o.Set("sid", num(env, t.sid));
  if (t.own_pid_ns) o.Set("ownPidNamespace", Napi::Boolean::New(env, true));
  if (t.host_pid > 0) o.Set("hostPid", num(env, t.host_pid));
  o.Set("comm", t.comm);
  o.Set("exe", t.exe);
  o.Set("cwd", t.cwd);
  o.Set("root", t.root);
  o.Set("umask", num(env, t.umask));
  o.Set("personality", num(env, t.personality));
  o.Set("creds", creds_to_js(env, t.creds));
  thread_to_js(env, t.main, o);
  o.Set("threads", array_to_js(env, t.threads, extra_thread_to_js));
  o.Set("sigactions", array_to_js(env, t.sigactions, sigaction_to_js));
  o.Set("mm", mm_to_js(env, t.mm));
  o.Set("vmas", array_to_js(env, t.vmas, vma_to_js));
  o.Set("pages", array_to_js(env, t.pages, page_run_to_js));
  o.Set("inherited", array_to_js(env, t.inherited, page_run_to_js));
  o.Set("files", array_to_js(env, t.files, file_to_js));
  o.Set("frozenSeconds", Napi::Number::New(env, t.frozen_seconds));
  o.Set("pagesSeconds", Napi::Number::New(env, t.pages_seconds));
  if (!t.pages_method.empty()) o.Set("pagesMethod", Napi::String::New(env, t.pages_method));
  if (!t.pages_blake3.empty()) o.Set("pagesBlake3", Napi::String::New(env, t.pages_blake3));
  if (!t.pages_chunk_blake3.empty()) o.Set("pagesChunkBlake3", Napi::String::New(env, t.pages_chunk_blake3));
  if (t.state.saved) o.Set("processState", process_state_to_js(env, t.state));
  if (t.snapshot) {
    Napi::Object snap = Napi::Object::New(env);
    snap.Set("privateBytes", num(env, t.snapshot_private_bytes));
    o.Set("snapshot", snap);
  }
  return o;
}

// The dump's measurements (frozenSeconds, pagesSeconds, snapshot) and hostPid are not read back: a
// restore does not need them.
TaskImage task_from_js(const Napi::Object& o) {
  TaskImage t;
  t.pid = (int)get_num(o, "pid");
  t.ppid = (int)get_num(o, "ppid");
  t.pgid = (int)get_num(o, "pgid");
  t.sid = (int)get_num(o, "sid");
  t.own_pid_ns = o.Get("ownPidNamespace").IsBoolean() && o.Get("ownPidNamespace").As<Napi::Boolean>().Value();
  t.comm = get_str(o, "comm");
  t.exe = get_str(o, "exe");
  t.cwd = get_str(o, "cwd");
  t.root = get_str(o, "root");
  t.umask = (uint32_t)get_num(o, "umask");
  t.personality = (uint32_t)get_num(o, "personality");
  if (o.Get("creds").IsObject()) t.creds = creds_from_js(get_obj(o, "creds"));
  t.main = thread_from_js(o, t.pid);
  if (has(o, "threads")) t.threads = array_from_js<ThreadState>(o, "threads", extra_thread_from_js);
  // Saved process state (images from before it was saved have none): then every thread has its own.
  if (has(o, "processState")) {
    t.state = process_state_from_js(o.Get("processState"));
    t.main.ps = thread_process_state_from_js(o.Get("threadState"), "threadState");
    Napi::Array arr = get_arr(o, "threads");
    for (uint32_t i = 0; i < arr.Length() && i < t.threads.size(); ++i)
      t.threads[i].ps = thread_process_state_from_js(arr.Get(i).As<Napi::Object>().Get("threadState"), "threads[].threadState");
  }
  t.sigactions = array_from_js<SigAction>(o, "sigactions", sigaction_from_js);
  t.mm = mm_from_js(get_obj(o, "mm"));
  t.vmas = array_from_js<Vma>(o, "vmas", vma_from_js);
  t.pages = array_from_js<PageRun>(o, "pages", page_run_from_js);
  if (has(o, "inherited")) t.inherited = array_from_js<PageRun>(o, "inherited", page_run_from_js);
  t.files = array_from_js<OpenFile>(o, "files", file_from_js);
  return t;
}

Napi::Object tree_to_js(Napi::Env env, const TreeImage& t) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("tasks", array_to_js(env, t.tasks, task_to_js));
  o.Set("pipes", array_to_js(env, t.pipes, pipe_to_js));
  o.Set("frozenSeconds", Napi::Number::New(env, t.frozen_seconds));
  return o;
}

TreeImage tree_from_js(const Napi::Object& o) {
  TreeImage t;
  t.tasks = array_from_js<TaskImage>(o, "tasks", task_from_js);
  t.pipes = array_from_js<PipeImage>(o, "pipes", pipe_from_js);
  return t;
}

}  // namespace cryopod
