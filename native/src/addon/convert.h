// TaskImage <-> JavaScript DumpedTask (native/lib/types.ts), one converter pair per struct (convert_parts.h).
// Input is checked field by field: a wrong type raises a TypeError naming the field, never a crash.
#pragma once

#include <napi.h>

#include "../core/task_model.h"

namespace cryopod {

Napi::Object task_to_js(Napi::Env env, const TaskImage& t);
TaskImage task_from_js(const Napi::Object& o);
Napi::Object tree_to_js(Napi::Env env, const TreeImage& t);
TreeImage tree_from_js(const Napi::Object& o);

}  // namespace cryopod
