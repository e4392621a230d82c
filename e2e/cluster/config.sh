# The e2e cluster's layout, shared by up.sh and down.sh (sourced, never run).
#
#   $E2E_DIR/                        (CRYOPOD_E2E_DIR, default /var/lib/cryopod-e2e)
#   ├── pki/                         CA, serving and client certificates, service-account keys
#   ├── kubeconfig                   admin (system:masters): KUBECONFIG=$E2E_DIR/kubeconfig kubectl ...
#   ├── etcd/  logs/  pids/          the control plane's data, one log and one pid file per process
#   ├── prometheus.yml, prometheus/  Prometheus (127.0.0.1:27090) scraping Cryopod's pods, and its data
#   ├── images/                      the chart's storage.hostPath (both "nodes" are this one machine)
#   ├── host.env                     what up.sh changed on the host, for down.sh to put back
#   └── node-a/, node-b/             one per node: containerd/{root,state,containerd.sock}, runc/,
#                                    cni/{net.d,ipam}, kubelet/ (root dir), pod-logs/, kubelet.yaml
#
# The nodes share the host's network namespace (and its IP, on different kubelet ports); each has its
# own containerd, kubelet root directory, cgroup root (/sys/fs/cgroup/<controller>/cryopod-e2e-<node>)
# and CNI bridge with its own pod subnet. Pods get their own network namespaces on those bridges.
# kube-proxy is not run: the chart is told the API server's address (apiServer.host/port) instead of the
# kubernetes Service's cluster IP.

readonly CACHE=${CRYOPOD_CACHE:-$HOME/.cache/cryopod}
readonly BIN=$CACHE/bin
readonly E2E_DIR=${CRYOPOD_E2E_DIR:-/var/lib/cryopod-e2e}
readonly NODES=(node-a node-b)
readonly CGROUP_PREFIX=cryopod-e2e-
readonly BRIDGE_PREFIX=cryopod- # + a, b: at most 15 characters
readonly ETCD_PORT=27379 ETCD_PEER_PORT=27380 APISERVER_PORT=27443 PROMETHEUS_PORT=27090
readonly SERVICE_CIDR=10.96.0.0/16 SERVICE_IP=10.96.0.1

# node_index NODE: 0, 1, ... (its subnet and ports are derived from it)
node_index() {
  local i
  for i in "${!NODES[@]}"; do [[ ${NODES[$i]} == "$1" ]] && { echo "$i"; return; }; done
  return 1
}
node_letter() { echo "${1#node-}"; }
node_subnet() { echo "10.244.$(($(node_index "$1") + 1)).0/24"; }
node_kubelet_port() { echo $((27250 + $(node_index "$1"))); }
node_healthz_port() { echo $((27260 + $(node_index "$1"))); }
node_bridge() { echo "$BRIDGE_PREFIX$(node_letter "$1")"; }
node_cgroup() { echo "/$CGROUP_PREFIX$1"; }

# The address pods and kubelets reach the API server at: the host's first global IPv4 address.
host_ip() {
  ip -4 -o addr show scope global | awk '{ split($4, a, "/"); print a[1]; exit }'
}

log() { echo "e2e: $*" >&2; }
die() {
  echo "e2e: $*" >&2
  exit 1
}

pid_alive() { # pid_alive NAME: its pid file names a running process
  local f=$E2E_DIR/pids/$1.pid
  [[ -r $f ]] && kill -0 "$(cat "$f")" 2>/dev/null
}

# wait_until DESCRIPTION SECONDS COMMAND...: polls COMMAND until it succeeds, or fails naming DESCRIPTION.
wait_until() {
  local what=$1 limit=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${limit}s waiting for $what"
    sleep 0.5
  done
}
