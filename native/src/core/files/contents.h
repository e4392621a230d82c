// The bytes of a file a kind saves whole (a memfd, a deleted file): read from an fd of ours, and written
// back into the restored task's new file through /proc/<task>/fd/<n> (no copy through the task).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cryopod {

// `size` bytes from offset 0, or EIO naming `what` when the file is shorter. Closes `fd` either way.
std::vector<uint8_t> read_contents(int fd, size_t size, const std::string& what);
// Writes `data` at offset 0 of fd `fd` of task `pid` (our PID namespace).
void write_contents(int pid, long fd, const std::vector<uint8_t>& data, const std::string& what);

}  // namespace cryopod
