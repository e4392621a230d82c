#!/usr/bin/env bash
# Brings up a real two-node Kubernetes on this machine (layout: config.sh): etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, and per node a containerd (with runc and the CNI bridge) and a
# kubelet; Cryopod's images (scripts/image/build.sh) imported into both containerds. Idempotent: what
# runs already is left alone, what is built is cached (scripts/kube/install.sh). Progress on stderr; on
# stdout, at the end, the line to use it: export KUBECONFIG=...
#
# e2e/cluster/down.sh stops it all and puts the machine back. Needs root.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=config.sh
source "$here/config.sh"

((EUID == 0)) || die "up.sh needs root (containerd, kubelet, cgroups, network namespaces)"
mkdir -p "$E2E_DIR"/{pki,logs,pids,etcd,images}
readonly HOST_IP=$(host_ip)
[[ -n $HOST_IP ]] || die "no global IPv4 address on this host: pods could not reach the API server"

# What the scripts themselves run: Debian's packages, installed when missing (a clean CI machine).
need=()
for t in curl:curl openssl:openssl ip:iproute2 setsid:util-linux python3:python3; do
  command -v "${t%%:*}" >/dev/null 2>&1 || need+=("${t#*:}")
done
if ((${#need[@]})); then
  log "installing Debian's ${need[*]}"
  { apt-get install -y -q --no-install-recommends "${need[@]}" || { apt-get update -q && apt-get install -y -q --no-install-recommends "${need[@]}"; }; } >&2 ||
    die "cannot install ${need[*]} (apt-get install ${need[*]})"
fi

log "tools (scripts/kube/install.sh; a cold build of the Kubernetes servers takes ~30 min)"
bash "$repo/scripts/kube/install.sh" kubectl-helm etcd kube runtime prometheus >&2
readonly RUNTIME=$CACHE/runtime/root
export PATH=$RUNTIME/usr/bin:$RUNTIME/usr/sbin:$BIN:$PATH

# --- what this changes on the host, recorded once (before anything changed it) for down.sh ----------------
# The CNI bridge plugin turns on IPv4 forwarding; the kubelet sets a few kernel tunables it wants
# (pkg/kubelet/cm: vm.overcommit_memory, vm.panic_on_oom, kernel.panic, kernel.panic_on_oops,
# kernel.keys.root_maxkeys/maxbytes); /run/containerd holds shim sockets; /var/log/containers the
# kubelet's log links.
readonly SYSCTLS=(net/ipv4/ip_forward vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
  kernel/keys/root_maxkeys kernel/keys/root_maxbytes)
if [[ ! -e $E2E_DIR/host.env ]]; then
  {
    for s in "${SYSCTLS[@]}"; do echo "sysctl $s $(cat "/proc/sys/$s")"; done
    for d in /run/containerd /var/log/containers; do [[ -e $d ]] || echo "created $d"; done
  } >"$E2E_DIR/host.env.tmp"
  mv "$E2E_DIR/host.env.tmp" "$E2E_DIR/host.env"
fi

# --- images --------------------------------------------------------------------------------------------
readonly IMAGE_DIR=${CRYOPOD_IMAGE_DIR:-$repo/dist/oci}
images_stale() {
  local t
  for t in cryopod counter postgres pause; do [[ -s $IMAGE_DIR/$t.oci.tar ]] || return 0; done
  [[ -n $(find "$repo/dist" "$repo/native/build/Release/cryopod.node" "$repo/native/stub/cryopod-stub" \
    "$repo/e2e/workloads" "$repo/scripts/image" -newer "$IMAGE_DIR/cryopod.oci.tar" -type f \
    -not -path "$IMAGE_DIR/*" -print -quit) ]]
}
if images_stale; then
  log "images: building (scripts/image/build.sh)"
  CRYOPOD_IMAGE_DIR=$IMAGE_DIR bash "$repo/scripts/image/build.sh" >&2
else
  log "images: up to date in $IMAGE_DIR"
fi
version=$(awk '$1 == "appVersion:" { gsub(/"/, "", $2); print $2 }' "$repo/helm/cryopod/Chart.yaml")
readonly PAUSE_IMAGE=docker.io/cryopod/pause:$version

# --- certificates ----------------------------------------------------------------------------------------
pki=$E2E_DIR/pki
# cert NAME CN ORG USAGE [SANS]: a key and a certificate signed by the cluster CA.
cert() {
  local name=$1 cn=$2 org=$3 usage=$4 sans=${5:-}
  [[ -s $pki/$name.crt ]] && return
  openssl req -new -newkey rsa:2048 -nodes -keyout "$pki/$name.key" -subj "${org:+/O=$org}/CN=$cn" \
    -out "$pki/$name.csr" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n%s' \
    "$usage" "${sans:+subjectAltName=$sans}" >"$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 365 -sha256 -extfile "$pki/$name.ext" -out "$pki/$name.crt.tmp" 2>/dev/null
  mv "$pki/$name.crt.tmp" "$pki/$name.crt"
  rm -f "$pki/$name.csr" "$pki/$name.ext"
}
if [[ ! -s $pki/ca.crt ]]; then
  log "certificates: a new CA"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -subj "/CN=cryopod-e2e-ca" -days 365 \
    -out "$pki/ca.crt.tmp" 2>/dev/null
  mv "$pki/ca.crt.tmp" "$pki/ca.crt"
fi
[[ -s $pki/sa.pub ]] || {
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}
cert apiserver kube-apiserver "" serverAuth \
  "IP:127.0.0.1,IP:$HOST_IP,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters clientAuth
cert admin cryopod-e2e-admin system:masters clientAuth
cert controller-manager system:kube-controller-manager "" clientAuth
cert scheduler system:kube-scheduler "" clientAuth
for node in "${NODES[@]}"; do
  cert "kubelet-$node" "system:node:$node" system:nodes clientAuth
  cert "kubelet-$node-serving" "$node" system:nodes serverAuth "IP:$HOST_IP,IP:127.0.0.1,DNS:$node"
done

# kubeconfig FILE CERT_NAME: a kubeconfig for that client certificate (paths, not embedded data).
kubeconfig() {
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: e2e
    cluster: { server: "https://$HOST_IP:$APISERVER_PORT", certificate-authority: "$pki/ca.crt" }
users:
  - name: $2
    user: { client-certificate: "$pki/$2.crt", client-key: "$pki/$2.key" }
contexts:
  - name: e2e
    context: { cluster: e2e, user: $2 }
current-context: e2e
EOF
}
kubeconfig "$E2E_DIR/kubeconfig" admin
kubeconfig "$pki/controller-manager.kubeconfig" controller-manager
kubeconfig "$pki/scheduler.kubeconfig" scheduler
export KUBECONFIG=$E2E_DIR/kubeconfig

# start NAME COMMAND...: runs COMMAND in its own session, logging to logs/NAME.log, unless it runs already.
start() {
  local name=$1
  shift
  if pid_alive "$name"; then
    log "$name: running (pid $(cat "$E2E_DIR/pids/$name.pid"))"
    return
  fi
  log "$name: starting (log: $E2E_DIR/logs/$name.log)"
  setsid "$@" >>"$E2E_DIR/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$E2E_DIR/pids/$name.pid"
}

# --- control plane ---------------------------------------------------------------------------------------
start etcd "$BIN/etcd" --name e2e --data-dir "$E2E_DIR/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "e2e=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls "" --log-level warn
wait_until "etcd" 60 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

start kube-apiserver "$BIN/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address 0.0.0.0 --advertise-address "$HOST_IP" --secure-port "$APISERVER_PORT" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" --client-ca-file "$pki/ca.crt" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local --service-account-key-file "$pki/sa.pub" \
  --service-account-signing-key-file "$pki/sa.key" --service-cluster-ip-range "$SERVICE_CIDR" \
  --authorization-mode Node,RBAC --allow-privileged=true \
  --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types InternalIP --cert-dir "$pki/apiserver-generated" --profiling=false
wait_until "kube-apiserver /readyz" 120 curl -fsS --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
  "https://$HOST_IP:$APISERVER_PORT/readyz"

start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig "$pki/controller-manager.kubeconfig" \
  --leader-elect=false --secure-port 0 --use-service-account-credentials=true --root-ca-file "$pki/ca.crt" \
  --service-account-private-key-file "$pki/sa.key" --cluster-name cryopod-e2e
start kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$pki/scheduler.kubeconfig" --leader-elect=false --secure-port 0

# --- nodes -----------------------------------------------------------------------------------------------
# cgroup_root NODE: the node's cgroup root in every mounted v1 hierarchy (and the v2 one), as the kubelet
# requires its --cgroup-root to exist; a new cpuset inherits nothing, so it gets its parent's CPUs and memory.
cgroup_root() {
  local rel mnt
  rel=$(node_cgroup "$1")
  while read -r mnt; do
    [[ -d $mnt$rel ]] && continue
    mkdir "$mnt$rel"
    if [[ -e $mnt$rel/cpuset.cpus ]]; then
      cat "$mnt/cpuset.cpus" >"$mnt$rel/cpuset.cpus"
      cat "$mnt/cpuset.mems" >"$mnt$rel/cpuset.mems"
    fi
  done < <(awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts)
}

containerd_config() { # containerd_config NODE DIR
  local dir=$2
  cat <<EOF
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$dir/containerd/containerd.sock"
[ttrpc]
  address = "$dir/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # Root here has no CAP_SYS_RESOURCE: a negative oom_score_adj (the kubelet asks -998 for sandboxes) is
  # refused, so runc would fail; containerd clamps it to its own instead.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true # the pods' netns files below our directory, not /run/netns
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$RUNTIME/usr/sbin/runc"
        Root = "$dir/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$RUNTIME/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
EOF
}

cni_config() { # cni_config NODE DIR: a bridge with this node's pod subnet (host-local addresses)
  cat <<EOF
{
  "cniVersion": "1.0.0",
  "name": "cryopod-e2e-$1",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$(node_bridge "$1")",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$(node_subnet "$1")" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$2/cni/ipam"
      }
    }
  ]
}
EOF
}

kubelet_config() { # kubelet_config NODE DIR
  cat <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: $(node_cgroup "$1")
failCgroupV1: false
containerRuntimeEndpoint: unix://$2/containerd/containerd.sock
address: $HOST_IP
port: $(node_kubelet_port "$1")
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $(node_healthz_port "$1")
tlsCertFile: $pki/kubelet-$1-serving.crt
tlsPrivateKeyFile: $pki/kubelet-$1-serving.key
authentication:
  x509: { clientCAFile: $pki/ca.crt }
  webhook: { enabled: false }
  anonymous: { enabled: false }
authorization: { mode: AlwaysAllow }
podLogsDir: $2/pod-logs
volumePluginDir: $2/kubelet/volume-plugins
failSwapOn: false
maxPods: 30
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: { memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1% }
rotateCertificates: false
serverTLSBootstrap: false
nodeStatusReportFrequency: 10s
EOF
}

for node in "${NODES[@]}"; do
  dir=$E2E_DIR/$node
  mkdir -p "$dir"/{containerd,runc,cni/net.d,cni/ipam,kubelet,pod-logs}
  cgroup_root "$node"
  containerd_config "$node" "$dir" >"$dir/containerd.toml"
  cni_config "$node" "$dir" >"$dir/cni/net.d/10-bridge.conflist"
  start "containerd-$node" "$RUNTIME/usr/bin/containerd" --config "$dir/containerd.toml"
  sock=$dir/containerd/containerd.sock
  wait_until "containerd of $node" 60 ctr --address "$sock" version
  for image in pause cryopod counter postgres; do
    name=$(tar -xOf "$IMAGE_DIR/$image.oci.tar" index.json | python3 -c 'import json, sys; print(json.load(sys.stdin)["manifests"][0]["annotations"]["io.containerd.image.name"])')
    digest=$(tar -xOf "$IMAGE_DIR/$image.oci.tar" index.json | python3 -c 'import json, sys; print(json.load(sys.stdin)["manifests"][0]["digest"])')
    if ctr --address "$sock" -n k8s.io images ls "name==$name" | grep -q "$digest"; then continue; fi
    log "$node: importing $name"
    ctr --address "$sock" -n k8s.io images import "$IMAGE_DIR/$image.oci.tar" >&2
  done
  kubeconfig "$dir/kubeconfig" "kubelet-$node"
  kubelet_config "$node" "$dir" >"$dir/kubelet.yaml"
  start "kubelet-$node" "$BIN/kubelet" --config "$dir/kubelet.yaml" --kubeconfig "$dir/kubeconfig" \
    --root-dir "$dir/kubelet" --hostname-override "$node" --node-ip "$HOST_IP"
done

for node in "${NODES[@]}"; do
  wait_until "node $node Ready" 180 sh -c "kubectl get node $node -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
done
wait_until "the default ServiceAccount" 60 kubectl get serviceaccount default

# --- Prometheus: scrapes Cryopod's pods. Debian's prometheus is built without Kubernetes service
# discovery, so the targets come from a file (prometheus-targets.json, re-read when it changes) that
# whoever installs the chart fills: e2e/cluster/scrape-targets.sh. ------------------------------------------
[[ -e $E2E_DIR/prometheus-targets.json ]] || echo '[]' >"$E2E_DIR/prometheus-targets.json"
cat >"$E2E_DIR/prometheus.yml" <<EOF
global: { scrape_interval: 2s, evaluation_interval: 2s }
scrape_configs:
  - job_name: cryopod
    file_sd_configs: [{ files: ["$E2E_DIR/prometheus-targets.json"], refresh_interval: 2s }]
EOF
start prometheus "$BIN/prometheus" --config.file "$E2E_DIR/prometheus.yml" --storage.tsdb.path "$E2E_DIR/prometheus" \
  --web.listen-address "127.0.0.1:$PROMETHEUS_PORT"
wait_until "prometheus" 60 curl -fsS "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"
log "cluster up: $(kubectl get nodes --no-headers | awk '{ printf "%s %s; ", $1, $2 }')"
log "prometheus: http://127.0.0.1:$PROMETHEUS_PORT"
echo "export KUBECONFIG=$E2E_DIR/kubeconfig PROMETHEUS_URL=http://127.0.0.1:$PROMETHEUS_PORT PATH=$BIN:\$PATH"
