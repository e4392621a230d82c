#!/usr/bin/env bash
# Points the e2e Prometheus at every Cryopod pod's metrics port: writes prometheus-targets.json (file
# service discovery, re-read on change) from the pods the API lists, labelled component, node and pod.
# Run it after `helm install` and after anything that replaces those pods.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=config.sh
source "$here/config.sh"
export PATH=$BIN:$PATH KUBECONFIG=${KUBECONFIG:-$E2E_DIR/kubeconfig}
kubectl get pods -A -l app.kubernetes.io/name=cryopod -o json | python3 -c '
import json, sys
targets = []
for p in json.load(sys.stdin)["items"]:
    ip = p["status"].get("podIP")
    ports = [cp["containerPort"] for c in p["spec"]["containers"] for cp in c.get("ports", []) if cp.get("name") == "metrics"]
    if ip and ports:
        labels = p["metadata"]["labels"]
        targets.append({"targets": [f"{ip}:{ports[0]}"], "labels": {
            "component": labels.get("app.kubernetes.io/component", ""), "node": p["spec"].get("nodeName", ""),
            "pod": p["metadata"]["name"]}})
print(json.dumps(targets, indent=1))' >"$E2E_DIR/prometheus-targets.json.tmp"
mv "$E2E_DIR/prometheus-targets.json.tmp" "$E2E_DIR/prometheus-targets.json"
echo "e2e: prometheus scrapes $(grep -c '"targets"' "$E2E_DIR/prometheus-targets.json") Cryopod pods" >&2
