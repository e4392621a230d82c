#!/usr/bin/env bash
# Stops the e2e cluster that up.sh started and puts the machine back as it was: every process it started
# (and every container's), the pods' network namespaces, veths and bridges, every mount below its
# directory, its cgroups, the kernel settings the kubelet and the CNI bridge changed. Then it checks that
# nothing is left and fails, listing what, if something is. Safe to run twice, or with nothing running.
#
# Only what is ours is touched: processes by their pid files or by a path below $E2E_DIR in their
# command line (the shims and containers started by our containerds name it), network namespaces that
# our containerds' sandboxes name, our bridges, cgroups under our cgroup roots.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=config.sh
source "$here/config.sh"

((EUID == 0)) || die "down.sh needs root"
readonly RUNTIME=$CACHE/runtime/root
export PATH=$RUNTIME/usr/bin:$BIN:$PATH

stop_pidfile() { # stop_pidfile NAME: SIGTERM, then SIGKILL after 10 s
  local f=$E2E_DIR/pids/$1.pid pid
  [[ -r $f ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $1 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$f"
}

# Every process in our cgroup roots (the pods' containers) and every process whose command line names our
# directory (containerd shims: -address $E2E_DIR/...). Printed one per line.
our_pids() {
  local mnt
  while read -r mnt; do
    for node in "${NODES[@]}"; do
      [[ -d $mnt$(node_cgroup "$node") ]] && find "$mnt$(node_cgroup "$node")" -name cgroup.procs -exec cat {} + 2>/dev/null
    done
  done < <(awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts)
  # (the pattern comes from a file: a grep with it on its own command line would list itself)
  grep -lsFf <(echo "$E2E_DIR/") /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3
}

our_mounts() { # mount points below our directory (and our sandboxes' netns files), deepest first
  awk -v dir="$E2E_DIR/" 'index($5, dir) == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

# 1. The kubelets first (they would restart containers), then each node's pods through its containerd:
#    note the network namespaces of its sandboxes, kill its tasks.
for node in "${NODES[@]}"; do stop_pidfile "kubelet-$node"; done
netns=()
for node in "${NODES[@]}"; do
  sock=$E2E_DIR/$node/containerd/containerd.sock
  [[ -S $sock ]] && pid_alive "containerd-$node" || continue
  while read -r id; do
    [[ -n $id ]] || continue
    ns=$(ctr --address "$sock" -n k8s.io containers info "$id" 2>/dev/null |
      python3 -c 'import json, sys
spec = json.load(sys.stdin).get("Spec") or {}
print(next((n.get("path", "") for n in spec.get("linux", {}).get("namespaces", []) if n.get("type") == "network"), ""))' 2>/dev/null)
    [[ -n $ns ]] && netns+=("$ns")
    ctr --address "$sock" -n k8s.io tasks kill -s KILL "$id" >/dev/null 2>&1
  done < <(ctr --address "$sock" -n k8s.io containers ls -q 2>/dev/null)
done

# 2. The servers, then whatever of ours is still alive.
for node in "${NODES[@]}"; do stop_pidfile "containerd-$node"; done
for name in prometheus kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_pidfile "$name"; done
for _ in 1 2 3; do
  pids=$(our_pids | sort -u)
  [[ -n $pids ]] || break
  log "killing leftover processes: $(echo $pids)"
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null
  sleep 0.5
done

# 3. Network: our sandboxes' namespaces (their veths go with them), then our bridges.
for ns in "${netns[@]}"; do
  [[ $ns == /proc/* ]] && continue # a live process's: gone with the process
  umount "$ns" 2>/dev/null || umount -l "$ns" 2>/dev/null
  rm -f "$ns"
done
for node in "${NODES[@]}"; do
  br=$(node_bridge "$node")
  ip link show "$br" >/dev/null 2>&1 && { log "deleting bridge $br"; ip link delete "$br"; }
done

# 4. Mounts below our directory (volumes, rootfs overlays, sandbox shm), deepest first.
while read -r m; do
  [[ -n $m ]] || continue
  umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount $m"
done < <(our_mounts)

# 5. cgroups: our roots in every hierarchy, deepest first (empty now that their processes are gone).
while read -r mnt; do
  for node in "${NODES[@]}"; do
    root=$mnt$(node_cgroup "$node")
    [[ -d $root ]] && find "$root" -depth -type d -exec rmdir {} + 2>/dev/null
  done
done < <(awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts)

# 6. What up.sh recorded: kernel settings back to their values, directories it created and what we put in them.
if [[ -r $E2E_DIR/host.env ]]; then
  while read -r kind a b; do
    case $kind in
    sysctl) [[ $(cat "/proc/sys/$a") == "$b" ]] || echo "$b" >"/proc/sys/$a" ;;
    created) [[ -d $a ]] && { find "$a" -mindepth 1 -delete 2>/dev/null; rmdir "$a" 2>/dev/null; } ;;
    esac
  done <"$E2E_DIR/host.env"
fi
# The kubelet's links to our pods' logs, where /var/log/containers existed before.
find /var/log/containers -maxdepth 1 -type l -lname "$E2E_DIR/*" -delete 2>/dev/null
# Shim sockets of our containerds in /run/containerd/s (when it existed before, it is someone else's).
find /run/containerd/s -maxdepth 1 -type s -newer "$E2E_DIR/host.env" -delete 2>/dev/null

# 7. Check, then remove the directory.
left=()
[[ -n $(our_pids) ]] && left+=("processes: $(our_pids | sort -u | tr '\n' ' ')")
[[ -n $(our_mounts) ]] && left+=("mounts: $(our_mounts | tr '\n' ' ')")
for node in "${NODES[@]}"; do
  ip link show "$(node_bridge "$node")" >/dev/null 2>&1 && left+=("bridge $(node_bridge "$node")")
  ip -o link show master "$(node_bridge "$node")" 2>/dev/null | grep -q . && left+=("veths on $(node_bridge "$node")")
  for mnt in $(awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts); do
    [[ -d $mnt$(node_cgroup "$node") ]] && left+=("cgroup $mnt$(node_cgroup "$node")")
  done
done
for ns in "${netns[@]}"; do [[ $ns != /proc/* && -e $ns ]] && left+=("netns $ns"); done
if [[ -r $E2E_DIR/host.env ]]; then
  while read -r kind a b; do
    [[ $kind == sysctl && $(cat "/proc/sys/$a") != "$b" ]] && left+=("sysctl $a is $(cat "/proc/sys/$a"), was $b")
  done <"$E2E_DIR/host.env"
fi
if ((${#left[@]})); then
  printf 'e2e: down.sh left behind: %s\n' "${left[@]}" >&2
  exit 1
fi
rm -rf "$E2E_DIR"
log "cluster down; nothing left behind"
