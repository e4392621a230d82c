#include "errors.h"

namespace cryopod {

std::string errno_name(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EIO: return "EIO";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENOTDIR: return "ENOTDIR";
    case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case ENOMEM: return "ENOMEM";
    case ENOSYS: return "ENOSYS";
    case ELOOP: return "ELOOP";  // O_NOFOLLOW met a symlink
    default: return "E" + std::to_string(err);
  }
}

void throw_errno(const std::string& what, int err) { throw CoreError(errno_name(err), what, err, what); }

void throw_errno_at(const std::string& op, const std::string& path, int err) {
  throw CoreError(errno_name(err), op + " " + path, err, op, path);
}

}  // namespace cryopod
