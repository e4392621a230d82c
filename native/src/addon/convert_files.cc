// The files of a task: OpenFile (with its InetSocket or pipe end, and its kind's FileState) and PipeImage ↔ their JS objects
// (native/lib/types.ts).
#include "convert_fields.h"
#include "convert_parts.h"
#include "file_state_js.h"

namespace cryopod {

using namespace js;

Napi::Object socket_to_js(Napi::Env env, const InetSocket& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("family", num(env, s.family));
  o.Set("type", num(env, s.type));
  o.Set("protocol", num(env, s.protocol));
  o.Set("state", s.connected_lost ? "connected" : s.listening ? "listen" : "bound");
  o.Set("address", s.address);
  o.Set("port", num(env, s.port));
  o.Set("backlog", num(env, s.backlog));
  if (s.pending) o.Set("pending", num(env, s.pending));
  o.Set("reuseaddr", Napi::Boolean::New(env, s.reuseaddr));
  o.Set("reuseport", Napi::Boolean::New(env, s.reuseport));
  o.Set("v6only", Napi::Boolean::New(env, s.v6only));
  return o;
}

InetSocket socket_from_js(const Napi::Object& o) {
  InetSocket s;
  s.family = (int)get_num(o, "family");
  s.type = (int)get_num(o, "type");
  s.protocol = (int)get_num(o, "protocol");
  std::string state = get_str(o, "state");
  if (state != "listen" && state != "bound" && state != "connected")
    throw Napi::TypeError::New(o.Env(), "socket.state must be listen, bound or connected");
  s.connected_lost = state == "connected";
  s.listening = state == "listen";
  s.address = get_str(o, "address");
  s.port = (int)get_num(o, "port");
  s.backlog = (int)get_num(o, "backlog");
  s.pending = o.Has("pending") ? (int)get_num(o, "pending") : 0;
  s.reuseaddr = get_bool(o, "reuseaddr");
  s.reuseport = get_bool(o, "reuseport");
  s.v6only = get_bool(o, "v6only");
  return s;
}

Napi::Object file_to_js(Napi::Env env, const OpenFile& f) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("fd", num(env, f.fd));
  o.Set("kind", f.kind);
  o.Set("path", f.path);
  o.Set("flags", num(env, (uint32_t)f.flags));
  o.Set("cloexec", Napi::Boolean::New(env, f.cloexec));
  o.Set("pos", num(env, f.pos));
  o.Set("size", num(env, f.size));
  o.Set("mode", num(env, f.mode));
  if (f.kind == "pipe") {
    Napi::Object p = Napi::Object::New(env);
    p.Set("id", num(env, f.pipe_id));
    p.Set("write", Napi::Boolean::New(env, f.pipe_write));
    o.Set("pipe", p);
  }
  if (f.has_socket) o.Set("socket", socket_to_js(env, f.socket));
  if (!f.state.empty()) o.Set("state", file_state_to_js(env, f.state));
  if (f.share_id != 0) o.Set("shareId", num(env, f.share_id));
  return o;
}

// size is what the dump saw (for inspect); mode is what a ghost (a deleted file) is re-created with.
OpenFile file_from_js(const Napi::Object& o) {
  OpenFile f;
  f.fd = (int)get_num(o, "fd");
  f.kind = get_str(o, "kind");
  f.path = get_str(o, "path");
  f.flags = (int)get_num(o, "flags");
  f.cloexec = get_bool(o, "cloexec");
  f.pos = get_num(o, "pos");
  if (o.Get("mode").IsNumber()) f.mode = (uint32_t)get_num(o, "mode");
  if (f.kind == "pipe") {
    Napi::Object p = get_obj(o, "pipe");
    f.pipe_id = get_num(p, "id");
    f.pipe_write = get_bool(p, "write");
  }
  if (f.kind == "socket") {
    Napi::Value s = o.Get("socket");
    if (!s.IsObject()) throw Napi::TypeError::New(o.Env(), "a socket file needs its socket description");
    f.has_socket = true;
    f.socket = socket_from_js(s.As<Napi::Object>());
  }
  if (!o.Get("state").IsUndefined()) f.state = file_state_from_js(o.Get("state"), "fd " + std::to_string(f.fd) + " state");
  if (o.Get("shareId").IsNumber()) f.share_id = get_num(o, "shareId");
  return f;
}

Napi::Object pipe_to_js(Napi::Env env, const PipeImage& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", num(env, p.id));
  o.Set("data", buf(env, p.data));
  return o;
}

PipeImage pipe_from_js(const Napi::Object& o) { return PipeImage{get_num(o, "id"), get_buf(o, "data")}; }

}  // namespace cryopod
