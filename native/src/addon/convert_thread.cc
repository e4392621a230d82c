// ThreadState ↔ the per-thread fields of a DumpedTask / ThreadState (native/lib/types.ts).
#include "convert_fields.h"
#include "convert_parts.h"
#include "process_state_js.h"

namespace cryopod {

using namespace js;

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

}  // namespace cryopod
