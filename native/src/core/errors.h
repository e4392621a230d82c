// Errors of the native core: a stable code for JavaScript, the errno, the operation and the path (when
// one is involved). The glue turns a CoreError into a JS Error with err.code / err.errno (as node-sqlite3
// does) and err.op / err.path, so a caller can tell "open pages-1.img failed" from other ENOENTs without
// parsing the message.
#pragma once

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace cryopod {

class CoreError : public std::runtime_error {
 public:
  // code: a stable name such as "ESRCH", "EZOMBIE", "EUNSUPPORTED"; err: errno or 0; op: the operation
  // that failed (a system call such as "open", or a step such as "verify"), path: what it acted on.
  CoreError(std::string code, const std::string& message, int err = 0, std::string op = {}, std::string path = {})
      : std::runtime_error(err ? message + ": " + std::strerror(err) : message),
        code_(std::move(code)), errno_(err), op_(std::move(op)), path_(std::move(path)) {}
  const std::string& code() const { return code_; }
  int err() const { return errno_; }
  const std::string& op() const { return op_; }      // empty when none was named
  const std::string& path() const { return path_; }  // empty when no path is involved

 private:
  std::string code_;
  int errno_;
  std::string op_, path_;
};

// Throws a CoreError for a failed system call, named by its errno (e.g. "EPERM"); `what` describes the
// call and is the error's op.
[[noreturn]] void throw_errno(const std::string& what, int err = errno);

// Throws a CoreError for a failed system call `op` on `path` (message "op path: strerror").
[[noreturn]] void throw_errno_at(const std::string& op, const std::string& path, int err = errno);

std::string errno_name(int err);

}  // namespace cryopod
