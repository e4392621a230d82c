#!/usr/bin/env bash
# Copies the CRDs from crds/ (the single source of truth) into the chart; helm/cryopod/chart.test.ts fails
# when the two differ, so run this after every change to crds/*.yaml.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$here/../crds
dst=$here/cryopod/crds
mkdir -p "$dst"
rm -f "$dst"/*.yaml
cp "$src"/*.yaml "$dst"/
echo "helm/sync-crds.sh: copied $(ls "$src"/*.yaml | wc -l) CRDs into $dst"
