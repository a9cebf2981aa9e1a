#!/usr/bin/env bash
# Bureau's benchmarks, release build, on this machine. See docs/BENCHMARKS.md.
#   bench/run.sh            all
#   bench/run.sh store      durable writes/s at 1, 16 and 64 writers
#   bench/run.sh rss        idle RSS of `bureau serve`
#   bench/run.sh smtp       SMTP delivery, Bureau against Postfix (root: configures Postfix)
#   bench/run.sh imap       IMAP load, Bureau against Dovecot (root: runs Dovecot)
#   bench/run.sh dav        CalDAV on 10,000 events, Bureau against Radicale
#   bench/run.sh scale      single-item operations at 1,000 and 10,000 items (mail also at
#                           100,000): cost ratios
#   bench/run.sh eas        ActiveSync: held Pings' memory, push latency, initial Sync
#   bench/run.sh syncml     SyncML with SyncEvolution: slow syncs of 5,000 contacts and events,
#                           two-way with 50 changes
#   bench/run.sh console    web console: asset size and first paint in headless Chromium
#   bench/run.sh image      image size and boot time under QEMU (root: builds the image)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common/lib.sh
what="${1:-all}"
WORK="${BENCH_DIR:-$(mktemp -d /var/tmp/bureau-bench.XXXXXX)}"
trap 'rm -rf "$WORK"' EXIT

cargo build --release -q -p bureau -p bureau-store --examples --bins

if [[ $what == all || $what == store ]]; then
  echo "## durable single-item writes (512-byte bodies, fsync on)"
  target/release/examples/write_bench "$WORK" 1 16 64
fi

if [[ $what == all || $what == image ]]; then
  echo "## appliance image"
  image/build.sh 2>&1 | grep '^image: '
  python3 bench/boot.py
fi

if [[ $what == all || $what == smtp ]]; then
  bench/smtp.sh
fi

if [[ $what == all || $what == imap ]]; then
  bench/imap.sh
fi

if [[ $what == all || $what == dav ]]; then
  bench/dav.sh
fi

if [[ $what == all || $what == scale ]]; then
  bench/scale.sh
fi

if [[ $what == all || $what == eas ]]; then
  echo "## ActiveSync"
  bench/eas.sh
fi

if [[ $what == all || $what == syncml ]]; then
  echo "## SyncML"
  bench/syncml.sh
fi

if [[ $what == all || $what == console ]]; then
  echo "## web console"
  bench/console.sh
fi

if [[ $what == all || $what == rss ]]; then
  echo "## idle RSS of bureau serve"
  start_bureau "$WORK"
  pid=$bpid
  echo "domain add + 10 users, then 5 s idle"
  $B domain add bench.example.com >/dev/null
  for i in $(seq 10); do
    echo "long enough pw" | $B user add "u$i@bench.example.com" --password-stdin >/dev/null
  done
  sleep 5
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  echo "idle RSS: $((rss / 1024)) MB ($rss kB); peak: $((hwm / 1024)) MB"
  kill -TERM $pid; wait $pid || true
fi
