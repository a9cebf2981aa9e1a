#!/usr/bin/env bash
# SMTP: Bureau against Postfix in the same run (docs/BENCHMARKS.md).
# smtp-source (from Debian's postfix) drives 20 sessions x 2,000 messages of 5 KB; Bureau's
# 250 means the message is in the mailbox, fsynced; Postfix is timed until the last file is
# in the Maildir. smtp_load (ours) then measures end-of-DATA-to-250 latency on each.
# Needs root (it configures the machine's Postfix on 127.0.0.1:2525 and a user for it).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common/lib.sh
N=${N:-2000}; S=${S:-20}; L=${L:-5120}
WORK="${BENCH_DIR:-$(mktemp -d /var/tmp/bureau-bench.XXXXXX)}"
command -v smtp-source >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
cargo build --release -q -p bureau -p bureau-smtp --examples --bins
LOAD=target/release/examples/smtp_load
now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", n / (b - a) }'; }

echo "## Bureau"
start_bureau "$WORK" $'[smtp]\nverify_inbound = false\nmax_messages_per_minute_per_ip = 1000000\nmax_connections_per_ip = 200'
trap 'kill $bpid 2>/dev/null || true' EXIT
$B domain add bench.example >/dev/null
echo "long enough pw" | $B user add u1@bench.example --password-stdin >/dev/null
t0=$(now)
smtp-source -s "$S" -l "$L" -m "$N" -f sender@remote.example -t u1@bench.example "127.0.0.1:$((25 + off))"
t1=$(now)
count=$($B --json mailbox list u1 | python3 -c 'import json,sys; print([c["items"] for c in json.load(sys.stdin) if c["name"]=="INBOX"][0])')
echo "smtp-source: $N messages accepted and in the mailbox in $(awk -v a=$t0 -v b=$t1 'BEGIN{printf "%.2f", b-a}') s: $(rate $N $t0 $t1) msg/s (INBOX holds $count)"
$LOAD "127.0.0.1:$((25 + off))" "$S" "$N" "$L" sender@remote.example u1@bench.example
rss=$(awk '/VmHWM/ {print $2}' /proc/$bpid/status)
echo "bureau peak RSS: $((rss / 1024)) MB"
kill -TERM $bpid; wait $bpid || true

echo "## Postfix $(postconf -h mail_version) (local delivery to Maildir)"
id benchmail >/dev/null 2>&1 || useradd -m benchmail
postconf -e "myhostname = bench.localdomain" "mydestination = bench.example, localhost" \
  "inet_interfaces = loopback-only" "mynetworks = 127.0.0.0/8" "home_mailbox = Maildir/" \
  "smtpd_client_connection_count_limit = 0" "smtpd_client_message_rate_limit = 0" \
  "alias_maps =" "alias_database =" "local_recipient_maps = unix:passwd.byname"
postconf -M "2525/inet=2525 inet n - n - - smtpd"
postfix stop >/dev/null 2>&1 || true
rm -rf ~benchmail/Maildir
postfix start >/dev/null 2>&1
sleep 1
t0=$(now)
smtp-source -s "$S" -l "$L" -m "$N" -f sender@remote.example -t benchmail@bench.example 127.0.0.1:2525
t1=$(now)
while [ "$(ls ~benchmail/Maildir/new 2>/dev/null | wc -l)" -lt "$N" ]; do sleep 0.05; done
t2=$(now)
echo "smtp-source: $N messages accepted at $(rate $N $t0 $t1) msg/s; all in the Maildir at $(rate $N $t0 $t2) msg/s"
rm -rf ~benchmail/Maildir
$LOAD 127.0.0.1:2525 "$S" "$N" "$L" sender@remote.example benchmail@bench.example
postfix stop >/dev/null 2>&1 || true
rm -rf "$WORK"
