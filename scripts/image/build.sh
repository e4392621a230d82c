#!/usr/bin/env bash
# Builds Cryopod's container images from this machine's files, with no registry and no container engine:
#
#   cryopod.oci.tar   docker.io/cryopod/cryopod:<appVersion>   operator, node agent, restore stub
#   pause.oci.tar     docker.io/cryopod/pause:<appVersion>     the pod sandbox (a static binary, pause.c)
#   counter.oci.tar   docker.io/cryopod/e2e-counter:<appVersion>  the e2e workload (e2e/workloads/counter.js)
#   postgres.oci.tar  docker.io/cryopod/e2e-postgres:<appVersion> the e2e database: this host's Debian
#                     PostgreSQL 15 server (e2e/workloads/postgres/start.sh)
#
# Layers: "node" (the node binary, the shared libraries it and the addon need, cp and sh, /etc/passwd) is
# the same directory for cryopod and counter, so both carry the same layer digest and a runtime stores it
# once; then "app" (/opt/cryopod: dist/, production node_modules, the addon, the stub, the parasite, the
# dump guard) or
# "counter" (/opt/counter). The archives load with `ctr -n k8s.io images import`, `docker load`,
# `podman load`; to push one to your registry: `skopeo copy oci-archive:cryopod.oci.tar
# docker://REGISTRY/cryopod:TAG` (docs/operations.md).
#
# Needs `npm run build` first (dist/ and native/). Output dir: $CRYOPOD_IMAGE_DIR (default dist/oci).
# Prints one line per image on stdout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

die() {
  echo "scripts/image/build.sh: $*" >&2
  exit 1
}

readonly OUT=${CRYOPOD_IMAGE_DIR:-$PWD/dist/oci}
version=$(awk '$1 == "appVersion:" { gsub(/"/, "", $2); print $2 }' helm/cryopod/Chart.yaml)
[[ -n $version ]] || die "no appVersion in helm/cryopod/Chart.yaml"
readonly VERSION=$version
readonly ADDON=native/build/Release/cryopod.node STUB=native/stub/cryopod-stub PARASITE=native/parasite/parasite.bin
readonly GUARD=native/guard/cryopod-guard
for f in dist/operator/main.js dist/node-agent/main.js "$ADDON" "$STUB" "$PARASITE" "$GUARD"; do
  [[ -e $f ]] || die "$f is missing: run npm run build first"
done
node_bin=$(command -v node) || die "node is not installed"

stage=$(mktemp -d /tmp/cryopod-image.XXXXXX)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$OUT"

# add_binary ROOTFS FILE: FILE and every shared library ldd says it loads, each at its real path (a merged
# /usr, as Debian's: /lib, /lib64, /bin and /sbin are symlinks into /usr).
add_binary() {
  local rootfs=$1 file=$2 lib
  copy_real "$rootfs" "$file"
  while read -r lib; do
    copy_real "$rootfs" "$lib"
  done < <(ldd "$file" 2>/dev/null | grep -o '/[^ ]*' || true)
}
copy_real() { # the file's contents at the real path of its directory (symlinked directories resolved)
  local dir
  dir=$(realpath "$(dirname "$2")")
  mkdir -p "$1$dir"
  cp -L "$2" "$1$dir/$(basename "$2")"
}

# --- layer "node": node, its libraries, cp (the restore pod's stub-install init container), sh ----------
base=$stage/node
mkdir -p "$base"/{usr/bin,usr/sbin,usr/lib,usr/lib64,etc,tmp,proc,sys,dev,run,var/tmp}
chmod 1777 "$base/tmp" "$base/var/tmp"
for l in bin sbin lib lib64; do ln -s "usr/$l" "$base/$l"; done
add_binary "$base" "$node_bin"
[[ $(realpath "$node_bin") == /usr/bin/node ]] || cp -L "$node_bin" "$base/usr/bin/node"
add_binary "$base" "$(command -v cp)"
add_binary "$base" /bin/sh
add_binary "$base" "$ADDON" # libstdc++ and friends, mostly node's already
add_binary "$base" "$GUARD" # the dump guard's libraries (the same ones)
rm -f "$base$(realpath "$(dirname "$GUARD")")/cryopod-guard"
rmdir -p --ignore-fail-on-non-empty "$base$(realpath "$(dirname "$GUARD")")" 2>/dev/null || true
rm -f "$base$(realpath "$(dirname "$ADDON")")/cryopod.node"
rmdir -p --ignore-fail-on-non-empty "$base$(realpath "$(dirname "$ADDON")")" 2>/dev/null || true
# Debian's node reads the system CA bundle at startup (and the S3 client needs it for https endpoints).
if [[ -r /etc/ssl/certs/ca-certificates.crt ]]; then
  mkdir -p "$base/etc/ssl/certs" && cp -L /etc/ssl/certs/ca-certificates.crt "$base/etc/ssl/certs/"
fi
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$base/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$base/etc/group"

# --- layer "app": /opt/cryopod, laid out as this repository (the addon finds itself from package.json) --
app=$stage/app/opt/cryopod
mkdir -p "$app/native/build/Release" "$app/native/stub" "$app/native/parasite" "$app/native/guard"
cp package.json package-lock.json "$app/"
cp -r bin "$app/bin"
cp -r dist "$app/dist"
rm -rf "$app/dist/oci" "$app"/dist/*/test "$app"/dist/e2e
find "$app/dist" \( -name '*.test.js' -o -name '*.map' -o -name '*.d.ts' \) -delete
cp "$ADDON" "$app/$ADDON"
cp "$STUB" "$app/$STUB"
cp "$STUB" "$app/cryopod-stub" # the chart's operator.stubPath
cp "$PARASITE" "$app/$PARASITE"
cp "$GUARD" "$app/$GUARD" # the dump's guard (checkpoint/guard.ts)
mkdir -p "$app/images" && cp -r images/proto "$app/images/proto" # read at run time (images/proto.ts)
# Production dependencies only, from npm's cache when it has them (it does after `npm ci`).
(cd "$app" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null) ||
  die "npm ci --omit=dev failed in the image's staging directory"
rm -f "$app/package-lock.json"

# --- layer "counter" -------------------------------------------------------------------------------------
mkdir -p "$stage/counter/opt/counter"
cp e2e/workloads/counter.js "$stage/counter/opt/counter/"

# --- layer "postgres": the server and initdb from this host's postgresql-15, the libraries they load that
# "node" lacks, the share directory initdb reads, UTC's zone file, plpgsql and snowball (initdb creates
# both), the user postgres (uid 999), `install` for the pod's data-directory init container -------------
readonly PG=/usr/lib/postgresql/15
[[ -x $PG/bin/postgres ]] || die "$PG/bin/postgres is missing: scripts/prepare-host.sh installs postgresql"
pgl=$stage/postgres
for f in "$PG/bin/postgres" "$PG/bin/initdb" "$PG/lib/plpgsql.so" "$PG/lib/dict_snowball.so" "$(command -v install)"; do
  add_binary "$pgl" "$f"
done
(cd "$pgl" && find . -type f | while read -r f; do if [[ -e $base/$f ]]; then rm "$f"; fi; done) # "node" has these
mkdir -p "$pgl/usr/share/postgresql" "$pgl/usr/share/zoneinfo/Etc" "$pgl/etc" "$pgl/opt/postgres"
cp -r /usr/share/postgresql/15 "$pgl/usr/share/postgresql/15" && rm -rf "$pgl/usr/share/postgresql/15/man"
cp -L /usr/share/zoneinfo/UTC "$pgl/usr/share/zoneinfo/UTC" && cp -L /usr/share/zoneinfo/UTC "$pgl/usr/share/zoneinfo/Etc/UTC"
cat "$base/etc/passwd" - >"$pgl/etc/passwd" <<<'postgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh'
cat "$base/etc/group" - >"$pgl/etc/group" <<<'postgres:x:999:'
cp e2e/workloads/postgres/start.sh e2e/workloads/postgres/pg_hba.conf "$pgl/opt/postgres/"

# --- pause -----------------------------------------------------------------------------------------------
mkdir -p "$stage/pause"
gcc -O2 -static -Wall -Wextra -Werror -o "$stage/pause/pause" scripts/image/pause.c || die "cannot build pause.c"
strip "$stage/pause/pause"

pack=scripts/image/oci-pack.py
python3 "$pack" --out "$OUT/cryopod.oci.tar" --name "docker.io/cryopod/cryopod:$VERSION" \
  --workdir /opt/cryopod --cmd '["node", "bin/cryopod.js"]' "$base" "$stage/app"
python3 "$pack" --out "$OUT/counter.oci.tar" --name "docker.io/cryopod/e2e-counter:$VERSION" \
  --workdir /opt/counter --cmd '["node", "/opt/counter/counter.js"]' "$base" "$stage/counter"
python3 "$pack" --out "$OUT/postgres.oci.tar" --name "docker.io/cryopod/e2e-postgres:$VERSION" \
  --workdir /tmp --env TZ=UTC --user 999:999 --cmd '["/bin/sh", "/opt/postgres/start.sh"]' "$base" "$pgl"
python3 "$pack" --out "$OUT/pause.oci.tar" --name "docker.io/cryopod/pause:$VERSION" \
  --entrypoint '["/pause"]' --user 65534:65534 "$stage/pause"
