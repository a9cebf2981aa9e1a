# Shared by the bench scripts (sourced).

# start_bureau DIR [EXTRA-TOML]: `bureau serve` (release) on a fresh store in DIR, on
# loopback ports at a random offset; sets off (the offset), bpid and B (the CLI).
start_bureau() {
  local dir=$1 extra=${2:-}
  off=$((20000 + RANDOM % 20000))
  cat > "$dir/bureau.toml" <<CONF
[server]
hostname = "bench.example.com"
data_dir = "$dir/bureau-data"
user = ""
bind = ["127.0.0.1"]
port_offset = $off
$extra
CONF
  target/release/bureau serve --config "$dir/bureau.toml" > "$dir/bureau.out" 2> "$dir/bureau.log" &
  bpid=$!
  for _ in $(seq 100); do grep -q "bureau: ready" "$dir/bureau.out" 2>/dev/null && break; sleep 0.1; done
  B="target/release/bureau --socket $dir/bureau-data/admin.sock"
}
