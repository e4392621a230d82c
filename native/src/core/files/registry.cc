#include "file_kind.h"

namespace cryopod {

#define KIND(k) extern const FileKind k;
#include "kinds.def"
#undef KIND

const std::vector<const FileKind*>& file_kinds() {
#define KIND(k) &k,
  static const std::vector<const FileKind*> all = {
#include "kinds.def"
  };
#undef KIND
  return all;
}

const FileKind* kind_named(const std::string& name) {
  for (const FileKind* k : file_kinds())
    if (name == k->name) return k;
  return nullptr;
}

}  // namespace cryopod
