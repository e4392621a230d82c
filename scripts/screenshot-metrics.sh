#!/usr/bin/env bash
# By hand, not in CI: re-make docs/images/prometheus-freeze-seconds.png, Prometheus's graph page of
# cryopod_freeze_seconds (p50 and p99) from a run of node-agent/metrics.integration.test.ts, rendered by
# headless Chromium. Installs Debian's chromium if it is missing (large; the tests never need it).
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/images/prometheus-freeze-seconds.png
if ! command -v chromium >/dev/null 2>&1; then
  echo "screenshot-metrics: installing chromium (apt-get)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null
fi
mkdir -p "$(dirname "$out")"
shot=$(mktemp --suffix=.png)
trap 'rm -f "$shot"' EXIT
CRYOPOD_PROMETHEUS_SCREENSHOT=$shot npx jest node-agent/metrics.integration.test.ts --runInBand
[[ -s $shot ]] || { echo "screenshot-metrics: no screenshot was written" >&2; exit 1; }
cp "$shot" "$out"
size=$(stat -c %s "$out")
echo "screenshot-metrics: $out ($((size / 1024)) KiB)"
((size < 200 * 1024)) || { echo "screenshot-metrics: $out is over 200 KiB: make the window smaller" >&2; exit 1; }
