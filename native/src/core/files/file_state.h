// The state of one open file that only its kind understands (an eventfd's counter, an epoll's targets, a
// memfd's contents): a small tree of named values, so that adding a kind of file adds no field to the
// model, to the N-API glue or to the TypeScript contract. Each kind module (files/*.cc) and its image
// module (images/files/*.ts) agree on the names; the glue carries the tree as it is.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "../errors.h"

namespace cryopod {

struct FileState {
  std::map<std::string, uint64_t> num;      // counters, flags, masks, times
  std::map<std::string, std::string> text;  // names and paths
  std::vector<uint8_t> data;                // contents (a memfd's, a deleted file's)
  std::vector<FileState> items;             // per-entry state (an epoll's targets)

  bool empty() const { return num.empty() && text.empty() && data.empty() && items.empty(); }
  bool has(const std::string& key) const { return num.count(key) != 0; }
  // A number the image must have: a clear error naming the object when it does not.
  uint64_t need(const std::string& key, const std::string& what) const {
    auto it = num.find(key);
    if (it == num.end()) throw CoreError("EIMAGE", what + ": the image has no " + key);
    return it->second;
  }
  uint64_t get(const std::string& key, uint64_t fallback = 0) const {
    auto it = num.find(key);
    return it == num.end() ? fallback : it->second;
  }
};

}  // namespace cryopod
