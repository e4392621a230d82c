// libFuzzer target: the native core's /proc parsers (proc.cc: status, stat, maps/smaps, fdinfo). The
// kernel writes these files, but a tenant chooses what goes into them: process names (comm, up to 15
// bytes of anything but NUL, parentheses and spaces included), file and mapping names (spaces, and
// escapes the kernel leaves), so the parsers must take any text. Each must return or throw a CoreError
// (never another exception, never a crash under ASan and UBSan), and what they return must be
// self-consistent: a maps entry is one the text really holds (its name a suffix of its line).
//
// The first byte picks the parser; the rest is the file's text.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "../src/core/errors.h"
#include "../src/core/proc.h"

using namespace cryopod;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string text((const char*)data + 1, size - 1);
  try {
    switch (data[0] % 4) {
      case 0:
        parse_status(text);
        break;
      case 1:
        parse_stat(text, "stat");
        break;
      case 2:
        for (const SmapsEntry& e : parse_maps(text))
          if (!e.name.empty() && text.find(e.name) == std::string::npos) {
            std::fprintf(stderr, "proc_text_fuzz: a maps name not in the text\n");
            std::abort();
          }
        break;
      case 3:
        parse_fdinfo(text);
        break;
    }
  } catch (const CoreError&) {
    // a refusal is fine
  }
  return 0;
}
