// One converter pair per struct of the task model (core/task_model.h ↔ native/lib/types.ts), grouped
// by concept: convert_thread.cc (a thread's state), convert_memory.cc (VMAs, mm fields, page runs),
// convert_files.cc (open files, sockets, pipes), convert.cc (the task and the tree, which use them all).
// A new field goes into its struct's pair; a new struct gets a pair of its own here.
#pragma once

#include <napi.h>

#include "../core/task_model.h"

namespace cryopod {

// The per-thread fields, at the top level of a DumpedTask (main thread) or in a ThreadState: written
// into `o`, read from `o` (the tid comes from the caller: the task's pid for the main thread).
void thread_to_js(Napi::Env env, const ThreadState& th, Napi::Object o);
ThreadState thread_from_js(const Napi::Object& o, int tid);

Napi::Object vma_to_js(Napi::Env env, const Vma& v);
Vma vma_from_js(const Napi::Object& o);
Napi::Object mm_to_js(Napi::Env env, const MmFields& mm);
MmFields mm_from_js(const Napi::Object& o);
Napi::Object page_run_to_js(Napi::Env env, const PageRun& r);
PageRun page_run_from_js(const Napi::Object& o);

Napi::Object socket_to_js(Napi::Env env, const InetSocket& s);
InetSocket socket_from_js(const Napi::Object& o);
Napi::Object file_to_js(Napi::Env env, const OpenFile& f);
OpenFile file_from_js(const Napi::Object& o);
Napi::Object pipe_to_js(Napi::Env env, const PipeImage& p);
PipeImage pipe_from_js(const Napi::Object& o);

}  // namespace cryopod
