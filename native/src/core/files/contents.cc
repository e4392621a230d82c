#include "contents.h"

#include <fcntl.h>
#include <unistd.h>

#include "../errors.h"

namespace cryopod {

std::vector<uint8_t> read_contents(int fd, size_t size, const std::string& what) {
  std::vector<uint8_t> data(size);
  size_t got = 0;
  while (got < size) {
    ssize_t n = pread(fd, data.data() + got, size - got, (off_t)got);
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(fd);
  if (got != size) throw CoreError("EIO", what + ": short read of its contents (" + std::to_string(got) + " of " + std::to_string(size) + " bytes)");
  return data;
}

void write_contents(int pid, long fd, const std::vector<uint8_t>& data, const std::string& what) {
  std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  int w = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (w < 0) throw_errno_at("open", path);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = pwrite(w, data.data() + done, data.size() - done, (off_t)done);
    if (n <= 0) break;
    done += (size_t)n;
  }
  int e = errno;
  close(w);
  if (done != data.size()) throw_errno("write the contents of " + what, done ? EIO : e);
}

}  // namespace cryopod
