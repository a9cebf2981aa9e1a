#!/usr/bin/env bash
# SyncML (issue 21; docs/BENCHMARKS.md): Debian's SyncEvolution as the phone (file backend)
# against a release `bureau serve`: a slow sync of N contacts and of N events from an empty
# device (XML, then WBXML for contacts), then a two-way sync with 50 changes. Wall time,
# messages, Bureau's peak RSS. N defaults to 5,000.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common/lib.sh
WORK="${BENCH_DIR:-$(mktemp -d /var/tmp/bureau-bench.XXXXXX)}"
cargo build --release -q -p bureau
trap 'kill $bpid 2>/dev/null || true; rm -rf "$WORK"' EXIT
gcc -shared -fPIC -O2 -o "$WORK/curl-callbacks.so" tests/syncml/curl-callbacks.c -ldl
start_bureau "$WORK" "
[auth]
trusted = [\"127.0.0.1\"]
[directory]
argon2_memory_kib = 1024
argon2_passes = 1"
$B domain add bench.example >/dev/null
echo "long enough pw" | $B user add alice@bench.example --password-stdin >/dev/null
OFF=$off SHIM="$WORK/curl-callbacks.so" BPID=$bpid .venv/bin/python bench/syncml.py "$WORK"
grep -i syncml "$WORK/bureau.log" | tail -5 >&2 || true
echo "bureau peak RSS: $(( $(awk '/VmHWM/ {print $2}' /proc/$bpid/status) / 1024 )) MB"
