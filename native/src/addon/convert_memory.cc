// The memory of a task: Vma, MmFields and PageRun ↔ their JS objects (native/lib/types.ts).
#include "convert_fields.h"
#include "convert_parts.h"

namespace cryopod {

using namespace js;

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

// A SysV segment's shared memory is named /SYSV<key> and carries the segment's mode.
bool is_sysv(const Vma& v) { return v.path.rfind("/SYSV", 0) == 0; }

}  // namespace

Napi::Object vma_to_js(Napi::Env env, const Vma& v) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("start", num(env, v.start));
  o.Set("end", num(env, v.end));
  o.Set("pgoff", num(env, v.pgoff));
  o.Set("prot", num(env, v.prot));
  o.Set("flags", num(env, v.flags));
  o.Set("kind", kind_name(v.kind));
  o.Set("name", v.name);
  if (!v.path.empty()) {
    o.Set("path", v.path);
    o.Set("dev", num(env, v.dev));
    o.Set("inode", num(env, v.inode));
  }
  o.Set("madv", num(env, v.madv));
  if (v.kind == VmaKind::Shmem) {
    o.Set("shmid", num(env, v.shmid));
    o.Set("shmSize", num(env, v.shm_size));
    if (is_sysv(v)) o.Set("sysvMode", num(env, v.sysv_mode));
  }
  if (v.ghost_id != 0) {
    Napi::Object g = Napi::Object::New(env);
    g.Set("id", num(env, v.ghost_id));
    g.Set("mode", num(env, v.ghost_mode));
    if (!v.ghost_data.empty()) g.Set("data", buf(env, v.ghost_data));
    o.Set("ghost", g);
  }
  return o;
}

Vma vma_from_js(const Napi::Object& o) {
  Vma v;
  v.start = get_num(o, "start");
  v.end = get_num(o, "end");
  v.pgoff = get_num(o, "pgoff");
  v.prot = (int)get_num(o, "prot");
  v.flags = (int)get_num(o, "flags");
  v.kind = kind_from(get_str(o, "kind"), o.Env());
  v.name = get_str(o, "name");
  if (has(o, "path")) v.path = get_str(o, "path");
  v.madv = get_num(o, "madv");
  if (v.kind == VmaKind::Shmem) {
    v.shmid = get_num(o, "shmid");
    v.shm_size = get_num(o, "shmSize");
    if (is_sysv(v)) v.sysv_mode = (uint32_t)get_num(o, "sysvMode");
  }
  if (has(o, "ghost")) {
    Napi::Object g = get_obj(o, "ghost");
    v.ghost_id = (uint32_t)get_num(g, "id");
    v.ghost_mode = (uint32_t)get_num(g, "mode");
    if (has(g, "data")) v.ghost_data = get_buf(g, "data");
    if (v.ghost_id == 0) throw Napi::TypeError::New(o.Env(), "vma.ghost.id must not be 0");
  }
  return v;
}

// The mm fields by JS name: one table for both directions, so they cannot drift apart.
constexpr std::pair<const char*, uint64_t MmFields::*> kMmFields[] = {
    {"startCode", &MmFields::start_code}, {"endCode", &MmFields::end_code},   {"startData", &MmFields::start_data},
    {"endData", &MmFields::end_data},     {"startBrk", &MmFields::start_brk}, {"brk", &MmFields::brk},
    {"startStack", &MmFields::start_stack}, {"argStart", &MmFields::arg_start}, {"argEnd", &MmFields::arg_end},
    {"envStart", &MmFields::env_start},   {"envEnd", &MmFields::env_end},
};

Napi::Object mm_to_js(Napi::Env env, const MmFields& mm) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto& [name, member] : kMmFields) o.Set(name, num(env, mm.*member));
  o.Set("auxv", buf(env, mm.auxv));
  return o;
}

MmFields mm_from_js(const Napi::Object& o) {
  MmFields mm;
  for (const auto& [name, member] : kMmFields) mm.*member = get_num(o, name);
  mm.auxv = get_buf(o, "auxv");
  return mm;
}

Napi::Object page_run_to_js(Napi::Env env, const PageRun& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("vaddr", num(env, r.vaddr));
  o.Set("nrPages", num(env, r.nr_pages));
  return o;
}

PageRun page_run_from_js(const Napi::Object& o) { return PageRun{get_num(o, "vaddr"), get_num(o, "nrPages")}; }

}  // namespace cryopod
