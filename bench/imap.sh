#!/usr/bin/env bash
# IMAP: Bureau against Dovecot in the same run (docs/BENCHMARKS.md), both over implicit TLS
# with fsync on, driven by services/imap/examples/imap_load.rs:
#   fill  M messages of 3 KB by APPEND over 4 connections   -> APPEND/s
#   login 2,000 x (TCP, TLS, LOGIN, LOGOUT) from 8 clients  -> LOGIN/s
#   fetch FETCH 1:1000 ENVELOPE on the M-message INBOX      -> latency
#   mixed 8 clients each looping SELECT, FETCH, STORE, APPEND, UID STORE, UID EXPUNGE
#   idle  IDLE connections held open                        -> memory per connection
# Both servers check the same argon2id cost (19 MiB, t=2) at LOGIN.
# Needs root (Dovecot from Debian, run by hand on 127.0.0.1 with its own config).
# ONLY=bureau or ONLY=dovecot runs one side; M, C, IDLE, SECS, LOGINS change the sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common/lib.sh
M=${M:-10000}; C=${C:-8}; IDLE=${IDLE:-500}; SECS=${SECS:-20}; LOGINS=${LOGINS:-2000}
PW="long enough pw"
WORK="${BENCH_DIR:-$(mktemp -d /var/tmp/bureau-bench.XXXXXX)}"
command -v dovecot >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null
ulimit -n "$(ulimit -Hn)"
cargo build --release -q -p bureau -p bureau-imap --examples --bins
LOAD=target/release/examples/imap_load
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

# Proportional set size (kB) of the given processes, shared pages split between them.
pss() { for p in "$@"; do awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null; done | awk '{s += $1} END {print s + 0}'; }

# load ADDR USER PIDS-COMMAND: the five measures against one server.
load() {
  local addr=$1 user=$2 pidsof=$3
  $LOAD "$addr" "$user" "$PW" fill "$M" 4
  $LOAD "$addr" "$user" "$PW" login "$LOGINS" "$C"
  $LOAD "$addr" "$user" "$PW" fetch 50
  $LOAD "$addr" "$user" "$PW" mixed "$C" "$SECS"
  sleep 2
  local before; before=$(pss $($pidsof))
  $LOAD "$addr" "$user" "$PW" idle "$IDLE" 15 > "$WORK/idle.out" &
  local lp=$!
  for _ in $(seq 600); do grep -q "^idle:" "$WORK/idle.out" && break; sleep 0.1; done
  sleep 3
  local during; during=$(pss $($pidsof))
  wait $lp
  echo "idle: $IDLE connections in IDLE: server memory (PSS) $((before / 1024)) MB -> $((during / 1024)) MB, $(( (during - before) * 1024 / IDLE / 1024 )) kB per connection"
}

if [[ ${ONLY:-} != dovecot ]]; then
echo "## Bureau"
start_bureau "$WORK" $'[imap]\nmax_connections_per_ip = 5000'
pids+=($bpid)
$B domain add bench.example >/dev/null
echo "$PW" | $B user add u1@bench.example --password-stdin >/dev/null
bureau_pid() { echo "$bpid"; }
load "127.0.0.1:$((993 + off))" u1@bench.example bureau_pid
echo "bureau peak RSS: $(( $(awk '/VmHWM/ {print $2}' /proc/$bpid/status) / 1024 )) MB"
kill -TERM $bpid; wait $bpid || true
fi
[[ ${ONLY:-} == bureau ]] && exit 0

echo "## Dovecot $(dovecot --version | cut -d' ' -f1) (Maildir, auth cache on, limits raised for the idle test, Debian's defaults otherwise)"
dport=$((30000 + RANDOM % 20000))
id benchmail >/dev/null 2>&1 || useradd -m benchmail
mkdir -p "$WORK/dovecot/home" "$WORK/dovecot/run"
chmod 755 "$WORK"  # Dovecot's auth and mail processes run as other users
chown benchmail: "$WORK/dovecot/home"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
  -days 30 -keyout "$WORK/dovecot/key.pem" -out "$WORK/dovecot/cert.pem" 2>/dev/null
printf 'u1:{ARGON2ID}%s::::::\n' "$($LOAD hash "$PW")" > "$WORK/dovecot/passwd"
cat > "$WORK/dovecot/dovecot.conf" <<CONF
base_dir = $WORK/dovecot/run
state_dir = $WORK/dovecot/run
protocols = imap
listen = 127.0.0.1
log_path = $WORK/dovecot/dovecot.log
ssl = required
ssl_cert = <$WORK/dovecot/cert.pem
ssl_key = <$WORK/dovecot/key.pem
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = $WORK/dovecot/passwd
}
userdb {
  driver = static
  args = uid=benchmail gid=benchmail home=$WORK/dovecot/home/%u
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = $dport
  }
  process_limit = 2000
}
service imap {
  process_limit = 2000
}
service auth {
  client_limit = 5000
}
service anvil {
  client_limit = 5000
}
mail_max_userip_connections = 2000
# Bureau remembers successful logins for an hour: let Dovecot do the same.
auth_cache_size = 10M
auth_cache_ttl = 1 hour
CONF
dovecot -F -c "$WORK/dovecot/dovecot.conf" &
dpid=$!; pids+=($dpid)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$dport") 2>/dev/null && break; sleep 0.1; done
dovecot_pids() { echo "$dpid"; pgrep -f '^dovecot/' || true; }
load "127.0.0.1:$dport" u1 dovecot_pids
kill -TERM $dpid; wait $dpid || true
