// The process state of process_state.h across N-API (native/lib/types.ts ProcessState and
// ThreadProcessState): 64-bit values as bigint, signed ones (nice, oom_score_adj) as numbers, siginfo
// and BPF programs as Buffers. Input is checked field by field, with counts capped.
#pragma once

#include <napi.h>

#include "../core/process_state.h"

namespace cryopod {

Napi::Object process_state_to_js(Napi::Env env, const ProcessState& s);
ProcessState process_state_from_js(const Napi::Value& v);
Napi::Object thread_process_state_to_js(Napi::Env env, const ThreadProcessState& s);
ThreadProcessState thread_process_state_from_js(const Napi::Value& v, const std::string& what);

}  // namespace cryopod
