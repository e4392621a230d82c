// Pipes: both ends and every holder inside the dumped tree (restored once, opened by every holder, with
// the bytes they held), or external: an end whose other holders are outside the tree (inherit.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <vector>

namespace cryopod {

constexpr size_t kMaxPipeBytes = 1 << 20;

// Calls `visit` for every open fd of every process on this machine (fd_dir: its /proc/PID/fd).
void for_each_open_fd(const std::function<void(int pid, int fd_dir, const char* name)>& visit);

// Every process on this machine holding one of these pipes, by pipe inode.
std::map<uint64_t, std::set<int>> pipe_holders(const std::set<uint64_t>& pipes);

// The bytes in a pipe, without taking them (tee() into a scratch pipe).
std::vector<uint8_t> peek_pipe(int pid, int fd);

}  // namespace cryopod
