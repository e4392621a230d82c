#!/usr/bin/env bash
# Builds the native parts: the N-API addon (incrementally once configured), the restore stub, the
# parasite blob, the test victims and the demo workload. Node's own headers are used (no download).
set -euo pipefail
cd "$(dirname "$0")/.."
nodedir="$(node -p 'require("path").resolve(process.execPath, "../..")')"
gyp=(npx --no-install node-gyp --directory native --nodedir="$nodedir" --loglevel=warn)
if [[ ! -f native/build/config.gypi || native/binding.gyp -nt native/build/config.gypi ]]; then
  "${gyp[@]}" configure >/dev/null
fi
"${gyp[@]}" build >/dev/null
make -s -C native/stub
make -s -C native/parasite
make -s -C native/test/victims
make -s -C native/test/snapshot
make -s -C native/test/tree
make -s -C native/test/files
make -s -C demo
