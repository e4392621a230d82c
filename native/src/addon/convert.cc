#include "convert.h"

#include "file_state_js.h"
#include "process_state_js.h"

namespace cryopod {

namespace {

const char* kind_name(VmaKind k) {
  switch (k) {
    case VmaKind::Anon: return "anon";
    case VmaKind::FilePrivate: return "file-private";
    case VmaKind::FileShared: return "file-shared";
    case VmaKind::Vdso: return "vdso";
    case VmaKind::Vvar: return "vvar";
    case VmaKind::Vsyscall: return "vsyscall";
    case VmaKind::Shmem: return "shmem";
  }
  return "anon";
}

VmaKind kind_from(const std::string& s, Napi::Env env) {
  if (s == "anon") return VmaKind::Anon;
  if (s == "file-private") return VmaKind::FilePrivate;
  if (s == "file-shared") return VmaKind::FileShared;
  if (s == "vdso") return VmaKind::Vdso;
  if (s == "vvar") return VmaKind::Vvar;
  if (s == "vsyscall") return VmaKind::Vsyscall;
  if (s == "shmem") return VmaKind::Shmem;
  throw Napi::TypeError::New(env, "unknown VMA kind: " + s);
}

Napi::Value num(Napi::Env env, uint64_t v) { return Napi::Number::New(env, (double)v); }
Napi::Value big(Napi::Env env, uint64_t v) { return Napi::BigInt::New(env, v); }
Napi::Buffer<uint8_t> buf(Napi::Env env, const std::vector<uint8_t>& v) {
  return Napi::Buffer<uint8_t>::Copy(env, v.data(), v.size());
}

// Field readers: each names the field in its error.
Napi::Value field(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) throw Napi::TypeError::New(o.Env(), std::string("missing field: ") + name);
  return v;
}
uint64_t get_num(const Napi::Object& o, const char* name) {
  Napi::Value v = field(o, name);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("field must be a number: ") + name);
  double d = v.As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 9007199254740992.0 || d != (double)(uint64_t)d)
    throw Napi::TypeError::New(o.Env(), std::string("field must be a non-negative integer: ") + name);
  return (uint64_t)d;
}
uint64_t get_big(const Napi::Object& o, const char* name) {
  Napi::Value v = field(o, name);
  if (!v.IsBigInt()) throw Napi::TypeError::New(o.Env(), std::string("field must be a bigint: ") + name);
  bool lossless = false;
  uint64_t r = v.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) throw Napi::TypeError::New(o.Env(), std::string("field does not fit in 64 bits: ") + name);
  return r;
}
std::string get_str(const Napi::Object& o, const char* name) {
  Napi::Value v = field(o, name);
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string("field must be a string: ") + name);
  return v.As<Napi::String>().Utf8Value();
}
std::vector<uint8_t> get_buf(const Napi::Object& o, const char* name) {
  Napi::Value v = field(o, name);
  if (!v.IsBuffer()) throw Napi::TypeError::New(o.Env(), std::string("field must be a Buffer: ") + name);
  auto b = v.As<Napi::Buffer<uint8_t>>();
  return std::vector<uint8_t>(b.Data(), b.Data() + b.Length());
}
Napi::Object get_obj(const Napi::Object& o, const char* name) {
  Napi::Value v = field(o, name);
  if (!v.IsObject()) throw Napi::TypeError::New(o.Env(), std::string("field must be an object: ") + name);
  return v.As<Napi::Object>();
}
Napi::Array get_arr(const Napi::Object& o, const char* name) {
  Napi::Value v = field(o, name);
  if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), std::string("field must be an array: ") + name);
  return v.As<Napi::Array>();
}


// The per-thread fields, at the top level of a DumpedTask (main thread) or in a ThreadState.
void thread_to_js(Napi::Env env, const ThreadState& th, Napi::Object o) {
  o.Set("regs", buf(env, th.regs));
  o.Set("xsave", buf(env, th.xsave));
  o.Set("sigmask", big(env, th.sigmask));
  Napi::Object as = Napi::Object::New(env);
  as.Set("sp", num(env, th.altstack_sp));
  as.Set("size", num(env, th.altstack_size));
  as.Set("flags", num(env, (uint32_t)th.altstack_flags));
  o.Set("altstack", as);
  if (th.has_rseq) {
    Napi::Object r = Napi::Object::New(env);
    r.Set("ptr", num(env, th.rseq_ptr));
    r.Set("size", num(env, th.rseq_size));
    r.Set("signature", num(env, th.rseq_sig));
    o.Set("rseq", r);
  } else {
    o.Set("rseq", env.Null());
  }
  Napi::Object rl = Napi::Object::New(env);
  rl.Set("head", num(env, th.robust_head));
  rl.Set("len", num(env, th.robust_len));
  o.Set("robustList", rl);
  o.Set("clearChildTid", num(env, th.clear_child_tid));
  o.Set("threadState", thread_process_state_to_js(env, th.ps));
}

ThreadState thread_from_js(const Napi::Object& o, int tid) {
  ThreadState th;
  th.tid = tid;
  th.regs = get_buf(o, "regs");
  th.xsave = get_buf(o, "xsave");
  th.sigmask = get_big(o, "sigmask");
  Napi::Object as = get_obj(o, "altstack");
  th.altstack_sp = get_num(as, "sp");
  th.altstack_size = get_num(as, "size");
  th.altstack_flags = (int)get_num(as, "flags");
  Napi::Value rseq = o.Get("rseq");
  if (rseq.IsObject()) {
    Napi::Object r = rseq.As<Napi::Object>();
    th.has_rseq = true;
    th.rseq_ptr = get_num(r, "ptr");
    th.rseq_size = (uint32_t)get_num(r, "size");
    th.rseq_sig = (uint32_t)get_num(r, "signature");
  }
  Napi::Object rl = get_obj(o, "robustList");
  th.robust_head = get_num(rl, "head");
  th.robust_len = get_num(rl, "len");
  th.clear_child_tid = get_num(o, "clearChildTid");
  return th;
}

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
  Napi::Object c = Napi::Object::New(env);
  c.Set("uid", num(env, t.creds.uid));
  c.Set("euid", num(env, t.creds.euid));
  c.Set("suid", num(env, t.creds.suid));
  c.Set("fsuid", num(env, t.creds.fsuid));
  c.Set("gid", num(env, t.creds.gid));
  c.Set("egid", num(env, t.creds.egid));
  c.Set("sgid", num(env, t.creds.sgid));
  c.Set("fsgid", num(env, t.creds.fsgid));
  o.Set("creds", c);
  thread_to_js(env, t.main, o);
  Napi::Array threads = Napi::Array::New(env, t.threads.size());
  for (size_t i = 0; i < t.threads.size(); ++i) {
    Napi::Object to = Napi::Object::New(env);
    to.Set("tid", num(env, t.threads[i].tid));
    thread_to_js(env, t.threads[i], to);
    threads.Set(i, to);
  }
  o.Set("threads", threads);
  Napi::Array sas = Napi::Array::New(env, t.sigactions.size());
  for (size_t i = 0; i < t.sigactions.size(); ++i) {
    const SigAction& s = t.sigactions[i];
    Napi::Object so = Napi::Object::New(env);
    so.Set("signo", num(env, s.signo));
    so.Set("handler", big(env, s.handler));
    so.Set("flags", big(env, s.flags));
    so.Set("restorer", big(env, s.restorer));
    so.Set("mask", big(env, s.mask));
    sas.Set(i, so);
  }
  o.Set("sigactions", sas);
  Napi::Object mm = Napi::Object::New(env);
  mm.Set("startCode", num(env, t.mm.start_code));
  mm.Set("endCode", num(env, t.mm.end_code));
  mm.Set("startData", num(env, t.mm.start_data));
  mm.Set("endData", num(env, t.mm.end_data));
  mm.Set("startBrk", num(env, t.mm.start_brk));
  mm.Set("brk", num(env, t.mm.brk));
  mm.Set("startStack", num(env, t.mm.start_stack));
  mm.Set("argStart", num(env, t.mm.arg_start));
  mm.Set("argEnd", num(env, t.mm.arg_end));
  mm.Set("envStart", num(env, t.mm.env_start));
  mm.Set("envEnd", num(env, t.mm.env_end));
  mm.Set("auxv", buf(env, t.mm.auxv));
  o.Set("mm", mm);
  Napi::Array vmas = Napi::Array::New(env, t.vmas.size());
  for (size_t i = 0; i < t.vmas.size(); ++i) {
    const Vma& v = t.vmas[i];
    Napi::Object vo = Napi::Object::New(env);
    vo.Set("start", num(env, v.start));
    vo.Set("end", num(env, v.end));
    vo.Set("pgoff", num(env, v.pgoff));
    vo.Set("prot", num(env, v.prot));
    vo.Set("flags", num(env, v.flags));
    vo.Set("kind", kind_name(v.kind));
    vo.Set("name", v.name);
    if (!v.path.empty()) {
      vo.Set("path", v.path);
      vo.Set("dev", num(env, v.dev));
      vo.Set("inode", num(env, v.inode));
    }
    vo.Set("madv", num(env, v.madv));
    if (v.kind == VmaKind::Shmem) {
      vo.Set("shmid", num(env, v.shmid));
      vo.Set("shmSize", num(env, v.shm_size));
      if (v.path.rfind("/SYSV", 0) == 0) vo.Set("sysvMode", num(env, v.sysv_mode));
    }
    vmas.Set(i, vo);
  }
  o.Set("vmas", vmas);
  Napi::Array pages = Napi::Array::New(env, t.pages.size());
  for (size_t i = 0; i < t.pages.size(); ++i) {
    Napi::Object p = Napi::Object::New(env);
    p.Set("vaddr", num(env, t.pages[i].vaddr));
    p.Set("nrPages", num(env, t.pages[i].nr_pages));
    pages.Set(i, p);
  }
  o.Set("pages", pages);
  Napi::Array inherited = Napi::Array::New(env, t.inherited.size());
  for (size_t i = 0; i < t.inherited.size(); ++i) {
    Napi::Object p = Napi::Object::New(env);
    p.Set("vaddr", num(env, t.inherited[i].vaddr));
    p.Set("nrPages", num(env, t.inherited[i].nr_pages));
    inherited.Set(i, p);
  }
  o.Set("inherited", inherited);
  Napi::Array files = Napi::Array::New(env, t.files.size());
  for (size_t i = 0; i < t.files.size(); ++i) {
    const OpenFile& f = t.files[i];
    Napi::Object fo = Napi::Object::New(env);
    fo.Set("fd", num(env, f.fd));
    fo.Set("kind", f.kind);
    fo.Set("path", f.path);
    fo.Set("flags", num(env, (uint32_t)f.flags));
    fo.Set("cloexec", Napi::Boolean::New(env, f.cloexec));
    fo.Set("pos", num(env, f.pos));
    fo.Set("size", num(env, f.size));
    fo.Set("mode", num(env, f.mode));
    if (f.kind == "pipe") {
      Napi::Object po = Napi::Object::New(env);
      po.Set("id", num(env, f.pipe_id));
      po.Set("write", Napi::Boolean::New(env, f.pipe_write));
      fo.Set("pipe", po);
    }
    if (f.has_socket) {
      Napi::Object so = Napi::Object::New(env);
      so.Set("family", num(env, f.socket.family));
      so.Set("type", num(env, f.socket.type));
      so.Set("protocol", num(env, f.socket.protocol));
      so.Set("state", f.socket.listening ? "listen" : "bound");
      so.Set("address", f.socket.address);
      so.Set("port", num(env, f.socket.port));
      so.Set("backlog", num(env, f.socket.backlog));
      so.Set("reuseaddr", Napi::Boolean::New(env, f.socket.reuseaddr));
      so.Set("reuseport", Napi::Boolean::New(env, f.socket.reuseport));
      so.Set("v6only", Napi::Boolean::New(env, f.socket.v6only));
      fo.Set("socket", so);
    }
    if (!f.state.empty()) fo.Set("state", file_state_to_js(env, f.state));
    files.Set(i, fo);
  }
  o.Set("files", files);
  o.Set("frozenSeconds", Napi::Number::New(env, t.frozen_seconds));
  o.Set("pagesSeconds", Napi::Number::New(env, t.pages_seconds));
  if (!t.pages_method.empty()) o.Set("pagesMethod", Napi::String::New(env, t.pages_method));
  if (t.state.saved) o.Set("processState", process_state_to_js(env, t.state));
  if (t.snapshot) {
    Napi::Object snap = Napi::Object::New(env);
    snap.Set("privateBytes", num(env, t.snapshot_private_bytes));
    o.Set("snapshot", snap);
  }
  return o;
}

TaskImage task_from_js(const Napi::Object& o) {
  Napi::Env env = o.Env();
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
  t.main = thread_from_js(o, t.pid);
  Napi::Value threads = o.Get("threads");
  if (!threads.IsUndefined()) {
    Napi::Array arr = get_arr(o, "threads");
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Object to = arr.Get(i).As<Napi::Object>();
      t.threads.push_back(thread_from_js(to, (int)get_num(to, "tid")));
    }
  }
  // Saved process state (images from before it was saved have none): then every thread has its own.
  if (!o.Get("processState").IsUndefined()) {
    t.state = process_state_from_js(o.Get("processState"));
    t.main.ps = thread_process_state_from_js(o.Get("threadState"), "threadState");
    Napi::Array arr = get_arr(o, "threads");
    for (uint32_t i = 0; i < arr.Length() && i < t.threads.size(); ++i)
      t.threads[i].ps = thread_process_state_from_js(arr.Get(i).As<Napi::Object>().Get("threadState"), "threads[].threadState");
  }
  Napi::Array sas = get_arr(o, "sigactions");
  for (uint32_t i = 0; i < sas.Length(); ++i) {
    Napi::Object s = sas.Get(i).As<Napi::Object>();
    t.sigactions.push_back(SigAction{(int)get_num(s, "signo"), get_big(s, "handler"), get_big(s, "flags"),
                                     get_big(s, "restorer"), get_big(s, "mask")});
  }

  Napi::Object mm = get_obj(o, "mm");
  t.mm.start_code = get_num(mm, "startCode");
  t.mm.end_code = get_num(mm, "endCode");
  t.mm.start_data = get_num(mm, "startData");
  t.mm.end_data = get_num(mm, "endData");
  t.mm.start_brk = get_num(mm, "startBrk");
  t.mm.brk = get_num(mm, "brk");
  t.mm.start_stack = get_num(mm, "startStack");
  t.mm.arg_start = get_num(mm, "argStart");
  t.mm.arg_end = get_num(mm, "argEnd");
  t.mm.env_start = get_num(mm, "envStart");
  t.mm.env_end = get_num(mm, "envEnd");
  t.mm.auxv = get_buf(mm, "auxv");
  Napi::Array vmas = get_arr(o, "vmas");
  for (uint32_t i = 0; i < vmas.Length(); ++i) {
    Napi::Object vo = vmas.Get(i).As<Napi::Object>();
    Vma v;
    v.start = get_num(vo, "start");
    v.end = get_num(vo, "end");
    v.pgoff = get_num(vo, "pgoff");
    v.prot = (int)get_num(vo, "prot");
    v.flags = (int)get_num(vo, "flags");
    v.kind = kind_from(get_str(vo, "kind"), env);
    v.name = get_str(vo, "name");
    if (vo.Has("path") && !vo.Get("path").IsUndefined()) v.path = get_str(vo, "path");
    v.madv = get_num(vo, "madv");
    if (v.kind == VmaKind::Shmem) {
      v.shmid = get_num(vo, "shmid");
      v.shm_size = get_num(vo, "shmSize");
      if (v.path.rfind("/SYSV", 0) == 0) v.sysv_mode = (uint32_t)get_num(vo, "sysvMode");
    }
    t.vmas.push_back(v);
  }
  Napi::Array pages = get_arr(o, "pages");
  for (uint32_t i = 0; i < pages.Length(); ++i) {
    Napi::Object p = pages.Get(i).As<Napi::Object>();
    t.pages.push_back(PageRun{get_num(p, "vaddr"), get_num(p, "nrPages")});
  }
  if (!o.Get("inherited").IsUndefined()) {
    Napi::Array inh = get_arr(o, "inherited");
    for (uint32_t i = 0; i < inh.Length(); ++i) {
      Napi::Object p = inh.Get(i).As<Napi::Object>();
      t.inherited.push_back(PageRun{get_num(p, "vaddr"), get_num(p, "nrPages")});
    }
  }
  Napi::Array files = get_arr(o, "files");
  for (uint32_t i = 0; i < files.Length(); ++i) {
    Napi::Object fo = files.Get(i).As<Napi::Object>();
    OpenFile f;
    f.fd = (int)get_num(fo, "fd");
    f.kind = get_str(fo, "kind");
    f.path = get_str(fo, "path");
    f.flags = (int)get_num(fo, "flags");
    f.cloexec = field(fo, "cloexec").ToBoolean().Value();
    f.pos = get_num(fo, "pos");
    if (f.kind == "pipe") {
      Napi::Object po = get_obj(fo, "pipe");
      f.pipe_id = get_num(po, "id");
      f.pipe_write = field(po, "write").ToBoolean().Value();
    }
    Napi::Value sv = fo.Get("socket");
    if (f.kind == "socket") {
      if (!sv.IsObject()) throw Napi::TypeError::New(env, "a socket file needs its socket description");
      Napi::Object so = sv.As<Napi::Object>();
      f.has_socket = true;
      f.socket.family = (int)get_num(so, "family");
      f.socket.type = (int)get_num(so, "type");
      f.socket.protocol = (int)get_num(so, "protocol");
      std::string state = get_str(so, "state");
      if (state != "listen" && state != "bound") throw Napi::TypeError::New(env, "socket.state must be listen or bound");
      f.socket.listening = state == "listen";
      f.socket.address = get_str(so, "address");
      f.socket.port = (int)get_num(so, "port");
      f.socket.backlog = (int)get_num(so, "backlog");
      f.socket.reuseaddr = field(so, "reuseaddr").ToBoolean().Value();
      f.socket.reuseport = field(so, "reuseport").ToBoolean().Value();
      f.socket.v6only = field(so, "v6only").ToBoolean().Value();
    }
    if (!fo.Get("state").IsUndefined()) f.state = file_state_from_js(fo.Get("state"), "files[" + std::to_string(i) + "].state");
    t.files.push_back(f);
  }
  return t;
}

Napi::Object tree_to_js(Napi::Env env, const TreeImage& t) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Array tasks = Napi::Array::New(env, t.tasks.size());
  for (size_t i = 0; i < t.tasks.size(); ++i) tasks.Set(i, task_to_js(env, t.tasks[i]));
  o.Set("tasks", tasks);
  Napi::Array pipes = Napi::Array::New(env, t.pipes.size());
  for (size_t i = 0; i < t.pipes.size(); ++i) {
    Napi::Object p = Napi::Object::New(env);
    p.Set("id", num(env, t.pipes[i].id));
    p.Set("data", buf(env, t.pipes[i].data));
    pipes.Set(i, p);
  }
  o.Set("pipes", pipes);
  o.Set("frozenSeconds", Napi::Number::New(env, t.frozen_seconds));
  return o;
}

TreeImage tree_from_js(const Napi::Object& o) {
  TreeImage t;
  Napi::Array tasks = get_arr(o, "tasks");
  for (uint32_t i = 0; i < tasks.Length(); ++i) {
    Napi::Value v = tasks.Get(i);
    if (!v.IsObject()) throw Napi::TypeError::New(o.Env(), "tasks must be objects");
    t.tasks.push_back(task_from_js(v.As<Napi::Object>()));
  }
  Napi::Array pipes = get_arr(o, "pipes");
  for (uint32_t i = 0; i < pipes.Length(); ++i) {
    Napi::Value v = pipes.Get(i);
    if (!v.IsObject()) throw Napi::TypeError::New(o.Env(), "pipes must be objects");
    Napi::Object p = v.As<Napi::Object>();
    t.pipes.push_back(PipeImage{get_num(p, "id"), get_buf(p, "data")});
  }
  return t;
}

}  // namespace cryopod
