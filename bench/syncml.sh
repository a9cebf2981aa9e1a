#!/usr/bin/env bash
# SyncML (issue 21; docs/BENCHMARKS.md): Debian's SyncEvolution as the phone (file backend)
# against a release `bureau serve`, then against SyncEvolution's own SyncML server in the
# same run: a slow sync of N contacts and of N events from an empty device (XML, then WBXML
# for contacts to a second device), then a two-way sync with 50 changes. Wall time, data
# sent, CPU of client and server, peak RSS. N defaults to 5,000. The peer needs
# syncevolution-http, python3-twisted and python3-dbus (installed here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common/lib.sh
WORK="${BENCH_DIR:-$(mktemp -d /var/tmp/bureau-bench.XXXXXX)}"
cargo build --release -q -p bureau
trap 'kill $bpid 2>/dev/null || true; rm -rf "$WORK"' EXIT
gcc -shared -fPIC -O2 -o "$WORK/curl-callbacks.so" tests/syncml/curl-callbacks.c -ldl
mkdir -p "$WORK/bureau" "$WORK/peer"
start_bureau "$WORK/bureau" "
[auth]
trusted = [\"127.0.0.1\"]
[directory]
argon2_memory_kib = 1024
argon2_passes = 1"
$B domain add bench.example >/dev/null
echo "long enough pw" | $B user add alice@bench.example --password-stdin >/dev/null
OFF=$off SHIM="$WORK/curl-callbacks.so" BPID=$bpid .venv/bin/python bench/syncml.py "$WORK/bureau"
echo "bureau        peak RSS: $(( $(awk '/VmHWM/ {print $2}' /proc/$bpid/status) / 1024 )) MB"
kill $bpid

# SyncEvolution's server: in a network namespace with only loopback (it binds every
# interface), with a D-Bus session of its own.
for p in syncevolution-http python3-twisted python3-dbus python3-gi dbus-daemon dbus-bin; do
  dpkg -s $p >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q $p >/dev/null
done
SERVER=syncevolution SHIM="$WORK/curl-callbacks.so" unshare --net dbus-run-session -- \
  bash -c 'ip link set lo up && exec .venv/bin/python bench/syncml.py "$0"' "$WORK/peer"
