#!/usr/bin/env bash
# Builds the native parts: the N-API addon (incrementally once configured), the restore stub, the
# parasite blob, the test victims and the demo workload. Node's own headers are used (no download).
set -euo pipefail
cd "$(dirname "$0")/.."
nodedir="$(node -p 'require("path").resolve(process.execPath, "../..")')"
# BLAKE3's C sources from Debian's librust-blake3-dev (prepare-host.sh installs it), linked where
# binding.gyp finds them: native/deps is not in git.
blake3_dir=$(ls -d /usr/share/cargo/registry/blake3-*/c 2>/dev/null | sort -V | tail -n 1)
[[ -n $blake3_dir ]] || { echo "build-native: BLAKE3's C sources are missing: apt-get install librust-blake3-dev" >&2; exit 1; }
mkdir -p native/deps && ln -sfn "$blake3_dir" native/deps/blake3
gyp=(npx --no-install node-gyp --directory native --nodedir="$nodedir" --loglevel=warn)
if [[ ! -f native/build/config.gypi || native/binding.gyp -nt native/build/config.gypi ]]; then
  "${gyp[@]}" configure >/dev/null
fi
"${gyp[@]}" build >/dev/null
make -s -C native/stub
make -s -C native/parasite
make -s -C native/guard -j2
make -s -C native/test/victims
make -s -C native/test/snapshot
make -s -C native/test/tree
make -s -C native/test/files
make -s -C demo
