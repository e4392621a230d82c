#!/usr/bin/env bash
# Installs the S3 server the storage tests and the bench run against, into "$CACHE/bin/minio":
#   minio  built from the github.com/minio/minio Go module (no release binaries can be fetched here)
#
# Idempotent and cached outside the repo, keyed by version, like scripts/kube/install.sh: a warm run is a
# stat(). Safe to run concurrently (flock). Prints one line on stdout; progress of a long build goes to the
# log; exits non-zero with the reason on failure. MinIO is only run as a separate test server on loopback,
# never linked into or shipped with Cryopod.
#
# Environment: CRYOPOD_CACHE (default ~/.cache/cryopod), CRYOPOD_MINIO_VERSION (default below),
# GOFLAGS_PARALLEL (default 1: `go build -p 1`, kind to a shared 2-core machine; set higher on a big one).
set -euo pipefail

readonly CACHE=${CRYOPOD_CACHE:-$HOME/.cache/cryopod}
# MinIO tags its releases RELEASE.<date>, which are not semver, so the module proxy serves pseudo-versions.
# This one (2026-02-12) declares go 1.24 and builds with the local Go 1.26 (GOTOOLCHAIN=local).
readonly MINIO_VERSION=${CRYOPOD_MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}
readonly BIN=$CACHE/bin

die() {
  echo "scripts/s3/install-minio.sh: $*" >&2
  exit 1
}

mkdir -p "$BIN" || die "cannot create $BIN (set CRYOPOD_CACHE to a writable directory)"

install_minio() {
  local dir=$CACHE/minio/$MINIO_VERSION
  local out=$dir/minio
  if [[ -x $out ]]; then
    ln -sfn "$out" "$BIN/minio"
    echo "minio $MINIO_VERSION: cached"
    return
  fi
  command -v go >/dev/null 2>&1 || die "go is not installed: the minio build needs Go >= 1.24"
  export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build-minio
  export GOFLAGS="-mod=mod -modcacherw -buildvcs=false -p=${GOFLAGS_PARALLEL:-1}" GOTOOLCHAIN=local
  export CGO_ENABLED=0 GOBIN=$dir/gobin
  local start=$SECONDS log=$dir/build.log
  mkdir -p "$dir"
  echo "minio $MINIO_VERSION: building from the Go module (many minutes on 2 cores; log in $log)" >&2
  # No replace directives in minio's go.mod, so `go install module@version` builds it as published.
  go install -trimpath -ldflags="-s -w" "github.com/minio/minio@$MINIO_VERSION" >"$log" 2>&1 || {
    tail -n 20 "$log" >&2
    die "minio $MINIO_VERSION: build failed (full log: $log)"
  }
  mv "$GOBIN/minio" "$out.tmp" && mv "$out.tmp" "$out" && rmdir "$GOBIN"
  # The build cache only helps a rebuild of another version; the module cache stays.
  rm -rf "$GOCACHE"
  ln -sfn "$out" "$BIN/minio"
  echo "minio $MINIO_VERSION: built in $((SECONDS - start)) s"
}

main() {
  exec 9>"$CACHE/.install-minio.lock"
  flock 9
  install_minio
}

# bash reads this whole line before running it, so editing the script during a build cannot derail it.
main "$@"; exit $?
