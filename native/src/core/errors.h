// Errors of the native core: the operation, the errno, the path, and a stable code for JavaScript.
// The glue turns a CoreError into a JS Error with err.code / err.errno (as node-sqlite3 does).
#pragma once

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace cryopod {

class CoreError : public std::runtime_error {
 public:
  // code: a stable name such as "ESRCH", "EZOMBIE", "EUNSUPPORTED"; err: errno or 0.
  CoreError(std::string code, const std::string& message, int err = 0)
      : std::runtime_error(err ? message + ": " + std::strerror(err) : message),
        code_(std::move(code)), errno_(err) {}
  const std::string& code() const { return code_; }
  int err() const { return errno_; }

 private:
  std::string code_;
  int errno_;
};

// Throws a CoreError for a failed system call, named by its errno (e.g. "EPERM").
[[noreturn]] void throw_errno(const std::string& what, int err = errno);

std::string errno_name(int err);

}  // namespace cryopod
