#!/usr/bin/env bash
# ActiveSync (docs/BENCHMARKS.md): held Pings' memory, change-to-Ping-reply, initial Sync of a
# big folder and of a big calendar in windows of 100; pyactivesync (the test venv) plays the
# devices. PINGS, MESSAGES and EVENTS change the sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common/lib.sh
PW="long enough pw"
WORK="${BENCH_DIR:-$(mktemp -d /var/tmp/bureau-bench.XXXXXX)}"
[ -x .venv/bin/python ] || scripts/test-deps.sh >/dev/null
cargo build --release -q -p bureau
trap 'kill $bpid 2>/dev/null || true; rm -rf "$WORK"' EXIT
# Many devices sign in at once from one address: no brute-force delay to wait out here.
start_bureau "$WORK" '[auth]
trusted = ["127.0.0.1"]
[smtp]
max_messages_per_minute_per_ip = 100000
max_connections_per_ip = 10000'
$B domain add bench.example >/dev/null
for u in u1 u2 u3; do echo "$PW" | $B user add "$u@bench.example" --password-stdin >/dev/null; done
ulimit -n 65536 || true
.venv/bin/python bench/eas.py $((443 + off)) $((25 + off)) $((143 + off)) "$bpid" "${PINGS:-500}" "${MESSAGES:-10000}" "${EVENTS:-2000}"
