#!/usr/bin/env bash
# Make this machine ready to build, test and demo Cryopod; `npm run demo` and `npm test` run it first.
#
# Idempotent and fast when everything is present (a few stat() calls, no package manager): it installs
# only what is missing, from Debian's packages (criu for `crit`, which the tests use to decode images;
# prometheus for the metrics tests' Prometheus and promtool; gcc, g++, make, python3 for node-gyp and
# the C programs; librust-blake3-dev for BLAKE3's C sources; nginx and postgresql, real programs the tests
# checkpoint; the servers kept from starting as services; clang-14 and libclang-rt-14-dev for the native
# fuzzers; chromium with CRYOPOD_SCREENSHOTS=1), then checks what no install can fix: the
# CPU architecture, the kernel's ptrace policy, /proc/PID/pagemap, privileges and Node's version.
# Success prints one line. Anything it cannot fix exits non-zero with the reason and what to do.
set -euo pipefail

readonly CRIT=/usr/bin/crit
readonly LOCK=/var/lock/cryopod-prepare-host.lock
readonly CAP_SYS_PTRACE=19 CAP_SYS_ADMIN=21 CAP_CHECKPOINT_RESTORE=40

problems=()
fail() { problems+=("$1"); }

report_and_exit() {
  if ((${#problems[@]})); then
    echo "prepare-host: this machine cannot run Cryopod yet:" >&2
    printf '  - %s\n' "${problems[@]}" >&2
    exit 1
  fi
}

have_cap() { # have_cap BIT: is capability BIT in this shell's effective set?
  local eff
  eff=$(awk '/^CapEff:/ { print $2 }' /proc/self/status 2>/dev/null || true)
  [[ -n $eff ]] && (((0x$eff >> $1) & 1))
}

# --- Things no install can fix ------------------------------------------------------------------------

[[ $(uname -s) == Linux ]] || fail "Cryopod needs Linux (this is $(uname -s))."
[[ $(uname -m) == x86_64 ]] || fail "Cryopod supports x86_64 only for now (this machine is $(uname -m))."

if ((EUID != 0)); then
  if ! have_cap $CAP_SYS_PTRACE; then
    fail "not root and no CAP_SYS_PTRACE: run as root (or grant CAP_SYS_PTRACE and CAP_CHECKPOINT_RESTORE)."
  elif ! have_cap $CAP_CHECKPOINT_RESTORE && ! have_cap $CAP_SYS_ADMIN; then
    fail "not root and no CAP_CHECKPOINT_RESTORE: restore needs it (or CAP_SYS_ADMIN); run as root."
  fi
fi

yama=/proc/sys/kernel/yama/ptrace_scope
if [[ -r $yama ]]; then
  scope=$(<"$yama")
  if [[ $scope == 3 ]]; then
    fail "ptrace is disabled ($yama is 3, which only a reboot can undo): boot with kernel.yama.ptrace_scope <= 2."
  elif [[ $scope != 0 ]] && ! have_cap $CAP_SYS_PTRACE; then
    fail "$yama is $scope and this shell lacks CAP_SYS_PTRACE: run as root or set it to 0 (sysctl kernel.yama.ptrace_scope=0)."
  fi
fi

if ! dd if=/proc/self/pagemap of=/dev/null bs=8 count=1 status=none 2>/dev/null; then
  fail "/proc/self/pagemap cannot be read: the kernel needs CONFIG_PROC_PAGE_MONITOR, and /proc must not be mounted with hidepid."
fi

if ! command -v node >/dev/null 2>&1; then
  fail "node is not installed: Cryopod needs Node.js 20."
else
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  if ((node_major < 20)); then
    fail "Node.js $(node -v) is too old: Cryopod needs Node.js 20."
  fi
  node_headers="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/include/node/node_api.h"
  if [[ ! -r $node_headers && -z ${npm_config_nodedir:-} ]]; then
    fail "Node's C headers are missing ($node_headers): install the headers of this Node.js build, or set npm's nodedir."
  fi
fi

report_and_exit

# --- Things we can install ----------------------------------------------------------------------------

missing=()
[[ -x $CRIT ]] || missing+=(criu)
# BLAKE3's C sources (the pages images' hash: docs/performance.md), compiled into the addon from here.
compgen -G '/usr/share/cargo/registry/blake3-*/c/blake3.h' >/dev/null || missing+=(librust-blake3-dev)
[[ -x /usr/bin/promtool ]] || missing+=(prometheus) # the metrics tests' Prometheus and promtool
for tool in gcc g++ make python3; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
# Real programs nobody here wrote, which the native tests checkpoint as their users run them
# (native/test/postgres.test.ts, nginx.test.ts): Debian's own, without recommends.
[[ -x /usr/sbin/nginx ]] || missing+=(nginx)
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
# clang and libFuzzer for the native fuzzers (native/fuzz/run.sh; the suite runs them briefly).
command -v clang++-14 >/dev/null 2>&1 || missing+=(clang-14)
compgen -G '/usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a' >/dev/null || missing+=(libclang-rt-14-dev)
# Only when asked (scripts/screenshot-metrics.sh): headless Chromium for the pictures in docs/images.
if [[ ${CRYOPOD_SCREENSHOTS:-} == 1 ]] && ! command -v chromium >/dev/null 2>&1; then missing+=(chromium); fi

if ((${#missing[@]})); then
  if ((EUID != 0)); then
    fail "missing Debian packages: ${missing[*]}; install them as root (apt-get install ${missing[*]})."
  elif ! command -v apt-get >/dev/null 2>&1; then
    fail "missing: ${missing[*]}, and this is not a Debian-like system: install them (crit comes with CRIU)."
  else
    log=$(mktemp /tmp/cryopod-prepare-host.XXXXXX)
    echo "prepare-host: installing ${missing[*]} (apt-get; output in $log)"
    # One install at a time, even when a demo and a test run start together.
    if ! (
      flock 9
      export DEBIAN_FRONTEND=noninteractive
      # Installed servers must not start as services (nginx on port 80, a postgres cluster on 5432): where
      # no policy-rc.d says so already, one refuses every start for the time of the install (Debian's way).
      policy=/usr/sbin/policy-rc.d
      if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
        trap 'rm -f "$policy"' EXIT
      fi
      apt-get update -q &&
        apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}"
    ) 9>"$LOCK" >"$log" 2>&1; then
      tail -n 15 "$log" >&2
      fail "apt-get could not install ${missing[*]} (full output in $log)."
    else
      rm -f "$log"
    fi
  fi
  report_and_exit
fi

# Debian's prometheus package enables a system service on :9090 (policy-rc.d above keeps it from starting
# during the install); tests start their own on free ports, so it must not come up at boot either.
if [[ -e /etc/init.d/prometheus ]] && ((EUID == 0)) && [[ ! -e /var/lib/cryopod-prometheus-service-off ]]; then
  # Disabled, never stopped here: it never ran, and a stop could only find some other Prometheus.
  { systemctl disable prometheus.service || true; update-rc.d prometheus disable || true; } >/dev/null 2>&1
  touch /var/lib/cryopod-prometheus-service-off
fi

if ! "$CRIT" -h >/dev/null 2>&1; then
  fail "$CRIT is installed but does not run ('$CRIT -h' fails): reinstall with apt-get install --reinstall criu python3-pycriu."
fi
report_and_exit

echo "prepare-host: ready (x86_64, Linux $(uname -r), node $(node -v), crit, nginx and postgres present)"
