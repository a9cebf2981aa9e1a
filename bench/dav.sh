#!/usr/bin/env bash
# CalDAV: Bureau against Radicale in the same run (docs/BENCHMARKS.md), driven by
# services/dav/examples/dav_load.rs over one keep-alive connection (HTTPS to Bureau, HTTP to
# Radicale, which serves without TLS here). A calendar of N events (10% weekly, half of those
# without end). Radicale stores events as one file each and slows down as a calendar grows
# under PUT, so its N events are written into its storage directly (as its own PUTs would
# leave them) and its PUT rate is measured on the first PUTS events of an empty calendar.
# Needs root for apt (radicale). ONLY=bureau skips Radicale; N, PUTS, RUNS, RRUNS change sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common/lib.sh
N=${N:-10000}; PUTS=${PUTS:-300}; RUNS=${RUNS:-20}
RRUNS=${RRUNS:-5}  # Radicale's queries take seconds each on 10,000 events
PW="long enough pw"
WORK="${BENCH_DIR:-$(mktemp -d /var/tmp/bureau-bench.XXXXXX)}"
command -v radicale >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq radicale >/dev/null
cargo build --release -q -p bureau -p bureau-dav --examples --bins
LOAD=target/release/examples/dav_load
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
now() { date +%s.%N; }
$LOAD - - - ics "$N" "$WORK/calendar.ics"

echo "## Bureau"
start_bureau "$WORK"
pids+=($bpid)
$B domain add bench.example >/dev/null
echo "$PW" | $B user add u1@bench.example --password-stdin >/dev/null
url="https://127.0.0.1:$((443 + off))/dav/calendars/u1/calendar/"
$LOAD "$url" u1 "$PW" put "$N"
$LOAD "$url" u1 "$PW" query "$RUNS"
$LOAD "$url" u1 "$PW" propfind 5
$LOAD "$url" u1 "$PW" sync "$RUNS"
curl -sk -o /dev/null -u "u1:$PW" -X MKCALENDAR "https://127.0.0.1:$((443 + off))/dav/calendars/u1/imported/"
t0=$(now)
$B mailbox import u1 imported "$WORK/calendar.ics" | head -1
t1=$(now)
echo "import of the $N-event .ics (bureau mailbox import): $(awk -v a=$t0 -v b=$t1 'BEGIN{printf "%.2f", b-a}') s"
echo "bureau peak RSS: $(( $(awk '/VmHWM/ {print $2}' /proc/$bpid/status) / 1024 )) MB"
kill -TERM $bpid; wait $bpid || true
[[ ${ONLY:-} == bureau ]] && exit 0

echo "## Radicale $(radicale --version) (filesystem storage, no authentication)"
rport=$((30000 + RANDOM % 20000))
mkdir -p "$WORK/radicale"
cat > "$WORK/radicale/config" <<CONF
[server]
hosts = 127.0.0.1:$rport
[auth]
type = none
[rights]
type = owner_only
[storage]
filesystem_folder = $WORK/radicale/collections
[logging]
level = warning
CONF
radicale --config "$WORK/radicale/config" 2> "$WORK/radicale/log" &
rpid=$!; pids+=($rpid)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$rport") 2>/dev/null && break; sleep 0.1; done
r="http://127.0.0.1:$rport/u1"
curl -s -o /dev/null -u "u1:x" -X MKCALENDAR "$r/small/"
curl -s -o /dev/null -u "u1:x" -X MKCALENDAR "$r/calendar/"
$LOAD "$r/small/" u1 x put "$PUTS"
$LOAD - - - files "$N" "$WORK/radicale/collections/collection-root/u1/calendar"
$LOAD "$r/calendar/" u1 x propfind 1 > /dev/null  # Radicale builds its item cache here
$LOAD "$r/calendar/" u1 x query "$RRUNS"
$LOAD "$r/calendar/" u1 x propfind 2
$LOAD "$r/calendar/" u1 x sync "$RRUNS"
t0=$(now)
curl -s -o /dev/null -w "import (PUT of the whole .ics on a new collection): HTTP %{http_code}" -u "u1:x" \
  -X PUT -H "content-type: text/calendar" --data-binary "@$WORK/calendar.ics" "$r/imported/"
t1=$(now)
echo ", $(awk -v a=$t0 -v b=$t1 'BEGIN{printf "%.2f", b-a}') s"
echo "radicale peak RSS: $(( $(awk '/VmHWM/ {print $2}' /proc/$rpid/status) / 1024 )) MB"
kill -TERM $rpid; wait $rpid || true
