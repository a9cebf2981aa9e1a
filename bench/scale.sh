#!/usr/bin/env bash
# Single-item operations at two sizes of the same collection, in one run (issue 24;
# docs/BENCHMARKS.md): IMAP, SMTP delivery, CalDAV and LDAP, by bench/scale.py with the
# venv's clients. SMALL, BIG, HUGE (mail only) and RUNS change the sizes and the number of
# timings; CACHE_MB sets the store's page cache (default: the product's, 16 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common/lib.sh
WORK="${BENCH_DIR:-$(mktemp -d /var/tmp/bureau-bench.XXXXXX)}"
cargo build --release -q -p bureau
trap 'kill $bpid 2>/dev/null || true; rm -rf "$WORK"' EXIT
start_bureau "$WORK" "
[imap]
max_connections_per_ip = 1000
[smtp]
max_messages_per_minute_per_ip = 100000
[auth]
trusted = [\"127.0.0.1\"]
[directory]
argon2_memory_kib = 1024
argon2_passes = 1
${CACHE_MB:+[store]
cache_mb = $CACHE_MB}"
OFF=$off CLI="$B" BPID=$bpid .venv/bin/python bench/scale.py "$WORK"
echo "bureau peak RSS: $(( $(awk '/VmHWM/ {print $2}' /proc/$bpid/status) / 1024 )) MB"
