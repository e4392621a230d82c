// The file layer's data across N-API: an OpenFile's kind-specific FileState as a plain object
// { num: { name: number | bigint }, text: { name: string }, data?: Buffer, items?: [FileState] }, the
// inherit-fd list of a restore, and the preflight report. Input is checked field by field.
#pragma once

#include <napi.h>

#include <vector>

#include "../core/files/file_driver.h"
#include "../core/files/file_state.h"

namespace cryopod {

Napi::Object file_state_to_js(Napi::Env env, const FileState& s);
FileState file_state_from_js(const Napi::Value& v, const std::string& what);

// inheritFds: [{ fd, restorerFd } | { fd, stubFd } | { fd, path }] (absent: none).
std::vector<InheritFd> inherit_from_js(const Napi::Value& v);

Napi::Array reports_to_js(Napi::Env env, const std::vector<FdReport>& reports);

}  // namespace cryopod
