#!/usr/bin/env bash
# The web console: size of its assets (raw and gzipped) and first paint in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common/lib.sh
RUNS=${RUNS:-10}
WORK="${BENCH_DIR:-$(mktemp -d /var/tmp/bureau-bench.XXXXXX)}"
raw=0; gz=0
for f in web-admin/*; do
  raw=$((raw + $(stat -c %s "$f"))); gz=$((gz + $(gzip -9c "$f" | wc -c)))
done
echo "console assets: $((raw / 1024)) kB, $((gz / 1024)) kB gzipped ($(ls web-admin | wc -l) files)"
start_bureau "$WORK"
trap 'kill $bpid 2>/dev/null || true' EXIT
node bench/console.mjs "https://127.0.0.1:$((443 + off))" "$RUNS"
