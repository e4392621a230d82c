#!/usr/bin/env bash
# By hand, not in CI: re-make a picture of Prometheus's graph page of cryopod_freeze_seconds (p50 and p99),
# rendered by headless Chromium (testenv/prometheus-screenshot.ts), from a fresh test run:
#
#   scripts/screenshot-metrics.sh        docs/images/prometheus-freeze-seconds.png, from
#                                        node-agent/metrics.integration.test.ts (three real processes)
#   scripts/screenshot-metrics.sh e2e    docs/images/prometheus-freeze-seconds-e2e.png, from the e2e run
#                                        (e2e/checkpoint-restore.test.ts: the pods it checkpoints on the
#                                        two-node cluster; root, a few minutes)
#
# Debian's chromium comes from scripts/prepare-host.sh with CRYOPOD_SCREENSHOTS=1 (large; no test needs it).
set -euo pipefail
cd "$(dirname "$0")/.."
case ${1:-metrics} in
metrics) out=docs/images/prometheus-freeze-seconds.png test=node-agent/metrics.integration.test.ts var=CRYOPOD_PROMETHEUS_SCREENSHOT ;;
e2e) out=docs/images/prometheus-freeze-seconds-e2e.png test=e2e/checkpoint-restore.test.ts var=CRYOPOD_E2E_SCREENSHOT ;;
*) echo "screenshot-metrics: unknown run '$1' (expected metrics or e2e)" >&2; exit 2 ;;
esac
CRYOPOD_SCREENSHOTS=1 bash scripts/prepare-host.sh >&2
mkdir -p "$(dirname "$out")"
shot=$(mktemp --suffix=.png)
trap 'rm -f "$shot"' EXIT
env "$var=$shot" npx jest "$test" --runInBand
[[ -s $shot ]] || { echo "screenshot-metrics: no screenshot was written" >&2; exit 1; }
cp "$shot" "$out"
size=$(stat -c %s "$out")
echo "screenshot-metrics: $out ($((size / 1024)) KiB)"
((size < 200 * 1024)) || { echo "screenshot-metrics: $out is over 200 KiB: make the window smaller" >&2; exit 1; }
