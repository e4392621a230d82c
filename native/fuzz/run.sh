#!/usr/bin/env bash
# The native fuzzers: builds each target of native/fuzz with clang's libFuzzer (AddressSanitizer and
# UndefinedBehaviorSanitizer, which abort on the first error), replays every committed regression input
# (native/fuzz/regressions/<target>/, each must pass), then fuzzes each target for SECONDS, starting
# from its seeds (native/fuzz/seeds/<target>/) in a scratch corpus that is never committed.
#
#   bash native/fuzz/run.sh [SECONDS]    default 20 per target (the test suite); `npm run fuzz` runs 600
#
# A failure prints the crashing input's path: copy it into regressions/<target>/ (small files only), fix
# the code, and the suite replays it from then on. clang and libFuzzer come from Debian's clang-14 and
# libclang-rt-14-dev, which scripts/prepare-host.sh installs when they are missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
seconds=${1:-20}
readonly CXX=clang++-14
readonly TARGETS=(image_layout_fuzz proc_text_fuzz)
# What each target links of the core (pure code only: no ptrace, no N-API).
declare -A SOURCES=([image_layout_fuzz]="../src/core/image_checks.cc ../src/core/errors.cc" [proc_text_fuzz]="../src/core/proc.cc ../src/core/errors.cc")

if ! command -v "$CXX" >/dev/null 2>&1 || ! compgen -G '/usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a' >/dev/null; then
  bash ../../scripts/prepare-host.sh
fi

work=$(mktemp -d /tmp/cryopod-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

for t in "${TARGETS[@]}"; do
  # shellcheck disable=SC2086 # SOURCES holds a list of paths
  nice -n 10 "$CXX" -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -o "$work/$t" "$t.cc" ${SOURCES[$t]}
  regressions=(regressions/"$t"/*)
  if [[ -e ${regressions[0]} ]]; then
    "$work/$t" "${regressions[@]}" >"$work/$t.replay.log" 2>&1 || { cat "$work/$t.replay.log" >&2; echo "fuzz: $t fails a committed regression input" >&2; exit 1; }
    echo "fuzz: $t: ${#regressions[@]} regression inputs pass"
  fi
  mkdir -p "$work/corpus-$t" "$work/crash-$t"
  cp seeds/"$t"/* "$work/corpus-$t"/ 2>/dev/null || true
  if ! timeout -s KILL $((seconds + 120)) "$work/$t" -max_total_time="$seconds" -max_len=1024 -print_final_stats=1 -artifact_prefix="$work/crash-$t/" \
      "$work/corpus-$t" >"$work/$t.log" 2>&1; then
    tail -n 40 "$work/$t.log" >&2
    keep=$(mktemp -d /tmp/cryopod-fuzz-finding.XXXXXX)
    cp "$work/crash-$t"/* "$keep"/ 2>/dev/null || true
    echo "fuzz: $t FAILED; the input is in $keep: add it to native/fuzz/regressions/$t/" >&2
    exit 1
  fi
  runs=$(awk '/stat::number_of_executed_units/ { print $2 }' "$work/$t.log")
  echo "fuzz: $t: ${runs:-?} inputs in ${seconds} s, no failure"
done
