#!/usr/bin/env bash
# Macro benchmark for the PostgreSQL side of Gatehouse.
#
# One run, one machine, side by side: pgbench against PostgreSQL directly, through the peer proxies
# (PgBouncer in session mode, HAProxy in TCP mode; configs in shared/peers/) and through Gatehouse.
# Only the ratios mean anything (absolute numbers move with the machine), so every target is measured
# in the same run, interleaved per workload, best of ROUNDS rounds.
#
# Usage: bench/pg.sh [--quick] [--duration SECONDS] [--rounds N] [--workloads LIST] [--targets LIST]
#                    [--only-direct-peers] [--no-build] [--keep]
#   --quick              5 s per measurement instead of 20
#   --workloads LIST     comma-separated subset of S-c1,S-c8,S-prepared-c8,big-c4 (default: all)
#   --targets LIST       comma-separated subset of direct,pgbouncer,haproxy,gatehouse,gatehouse+policy,
#                        gatehouse+masking,gatehouse+recording (default: all); for quick A/B runs while tuning.
#                        Lines whose targets were not measured print n/a.
#   --only-direct-peers  skip Gatehouse (no build); measures direct, PgBouncer and HAProxy only
#   --no-build           use the already built src/Host/bin/Release/net10.0/gatehouse
#   --keep               keep the work directory (logs, configs) for inspection
#   GATEHOUSE_BIN=PATH   benchmark that gatehouse executable instead of building src/Host
#
# Output ends with one line per workload:
#   pg <workload> gatehouse/direct=<ratio> gatehouse/pgbouncer=<ratio>
#   pg <workload>+policy gatehouse/direct=<ratio> gatehouse/pgbouncer=<ratio> vs-gatehouse=<ratio>
#   pg <workload>+masking gatehouse/direct=<ratio> gatehouse/pgbouncer=<ratio> vs-gatehouse=<ratio>
#     (+masking: the policy plus two masked columns of big_rows and every built-in detector on)
#   pg <workload>+recording gatehouse/direct=<ratio> gatehouse/pgbouncer=<ratio> vs-gatehouse=<ratio> vs-masking=<ratio> cpu-vs-masking=<ratio>
#     (+recording: policy, masking and session recording all on; vs-masking is the cost of recording alone, in
#      throughput; cpu-vs-masking in the gateway's CPU time per transaction)
#   Every other Gatehouse target runs with recording: off, so that each line adds one thing.
#   peers <workload> pgbouncer/direct=<ratio> haproxy/direct=<ratio>
# and, before those, the CPU time each proxy process used per transaction (from /proc/PID/stat, least of the rounds):
#   cpu <workload> pgbouncer=<us> haproxy=<us> gatehouse=<us> ...
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/pg.sh
source "$REPO/scripts/lib/pg.sh"
export PATH="$PATH:/usr/sbin:/sbin"

DURATION=20
ROUNDS=2
ONLY_DIRECT_PEERS=0
BUILD=1
KEEP=0
WORKLOADS_ARG=""
TARGETS_ARG=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) DURATION=5 ;;
    --duration) DURATION=${2:?--duration needs seconds}; shift ;;
    --rounds) ROUNDS=${2:?--rounds needs a count}; shift ;;
    --workloads) WORKLOADS_ARG=${2:?--workloads needs a list}; shift ;;
    --targets) TARGETS_ARG=${2:?--targets needs a list}; shift ;;
    --only-direct-peers) ONLY_DIRECT_PEERS=1 ;;
    --no-build) BUILD=0 ;;
    --keep) KEEP=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "bench/pg.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

ALL_WORKLOADS=(S-c1 S-c8 S-prepared-c8 big-c4)
ALL_TARGETS=(direct pgbouncer haproxy gatehouse gatehouse+policy gatehouse+masking gatehouse+recording)
# in_list ITEM A B C: is ITEM one of the rest?
in_list() {
  local item=$1 x
  shift
  for x in "$@"; do [[ "$x" == "$item" ]] && return 0; done
  return 1
}
# pick_list VAR KIND LIST ALL...: sets array VAR to the comma-separated LIST (to ALL when LIST is empty); exits on
# a name not in ALL.
pick_list() {
  local -n out=$1
  local kind=$2 list=$3 x
  shift 3
  if [[ -z "$list" ]]; then out=("$@"); return; fi
  IFS=, read -r -a out <<< "$list"
  for x in "${out[@]}"; do
    in_list "$x" "$@" || { echo "bench/pg.sh: unknown $kind '$x' (known: $*)" >&2; exit 2; }
  done
}
pick_list WORKLOADS workload "$WORKLOADS_ARG" "${ALL_WORKLOADS[@]}"
pick_list TARGETS target "$TARGETS_ARG" "${ALL_TARGETS[@]}"
# wanted NAME: was target NAME asked for?
wanted() { in_list "$1" "${TARGETS[@]}"; }
# GATEHOUSE_BIN points at another gatehouse executable (a published or AOT build); it is then not built.
if [[ -n "${GATEHOUSE_BIN:-}" ]]; then
  GH_BIN=$GATEHOUSE_BIN
  BUILD=0
else
  GH_BIN="$REPO/src/Host/bin/Release/net10.0/gatehouse"
fi
# Peer configs live in the steering repo's shared/ folder, beside the clone.
PEERS_DIR=${PEERS_DIR:-}
if [[ -z "$PEERS_DIR" ]]; then
  for d in "$REPO/../shared/peers" /work/shared/peers; do
    if [[ -f "$d/pgbouncer.ini" && -f "$d/haproxy.cfg" ]]; then PEERS_DIR=$d; break; fi
  done
fi

say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf 'bench/pg.sh: error: %s\n' "$*" >&2; exit 1; }
log_tail() {
  if [[ -f "$1" ]]; then
    printf -- '---- last lines of %s ----\n' "$1" >&2
    tail -n 30 "$1" >&2
    printf -- '----\n' >&2
  fi
}

# ---------------------------------------------------------------- cleanup: everything we start, we stop
WORK=""
PG_DIR=""
PGBOUNCER_PIDFILE=""
CHILD_PIDS=()   # started with & by this script: gatehouse instances, haproxy

stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  # Gatehouse drains on SIGTERM; give it a moment, then insist.
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  local pid
  for pid in "${CHILD_PIDS[@]}"; do stop_pid "$pid"; done
  if [[ -n "$PGBOUNCER_PIDFILE" && -f "$PGBOUNCER_PIDFILE" ]]; then
    pid=$(cat "$PGBOUNCER_PIDFILE" 2>/dev/null)
    [[ "$pid" =~ ^[0-9]+$ ]] && stop_pid "$pid"
  fi
  [[ -n "$PG_DIR" ]] && pg_stop "$PG_DIR"
  if [[ -n "$WORK" ]]; then
    if [[ $KEEP -eq 1 ]]; then
      echo "bench/pg.sh: work directory kept: $WORK" >&2
    else
      # The cluster alone is ~200 MB at scale 10: never leave it behind; --keep is there for debugging.
      rm -rf "$WORK"
      [[ $rc -eq 0 ]] || echo "bench/pg.sh: rerun with --keep to inspect logs and configs" >&2
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- prerequisites
ensure_packages() {
  local missing=0
  pg__bin >/dev/null 2>&1 || missing=1
  local c
  for c in pgbench psql pgbouncer haproxy; do
    command -v "$c" >/dev/null 2>&1 || missing=1
  done
  if [[ $missing -eq 1 ]]; then
    [[ $(id -u) -eq 0 ]] || die "postgresql, pgbouncer or haproxy is missing and we are not root to install them"
    say "installing postgresql pgbouncer haproxy"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q postgresql pgbouncer haproxy >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && apt-get install -y -q postgresql pgbouncer haproxy >/dev/null; } \
      || die "apt-get install postgresql pgbouncer haproxy failed"
  fi
  pg__bin >/dev/null || die "PostgreSQL server binaries still not found"
  for c in pgbench psql pgbouncer haproxy; do
    command -v "$c" >/dev/null 2>&1 || die "$c not found after install"
  done
}

# ---------------------------------------------------------------- targets: (name, port, user, password)
T_NAMES=()
T_PORTS=()
T_USERS=()
T_PASSWORDS=()
T_PIDS=()       # the proxy's process, whose CPU time is measured per transaction ("" for direct)
add_target() {
  T_NAMES+=("$1"); T_PORTS+=("$2"); T_USERS+=("$3"); T_PASSWORDS+=("$4"); T_PIDS+=("${5:-}")
}

# CPU time (user + system) a process has used so far, in clock ticks; empty when it is gone.
cpu_ticks() {
  [[ -n "$1" && -r "/proc/$1/stat" ]] || return 0
  # Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  sed -e 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
CLK_TCK=$(getconf CLK_TCK)

# Wait until a target answers a real query with its credentials; fail with its log if it does not.
wait_ready() {
  local name=$1 port=$2 user=$3 password=$4 logfile=$5 pid=${6:-} i out
  for i in $(seq 1 150); do
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      log_tail "$logfile"
      die "$name exited during startup (log above)"
    fi
    if out=$(PGPASSWORD=$password PGSSLMODE=disable PGCONNECT_TIMEOUT=2 \
        psql -X -A -t -h 127.0.0.1 -p "$port" -U "$user" -d demo -c 'SELECT 1' 2>&1) && [[ "$out" == 1 ]]; then
      return 0
    fi
    sleep 0.2
  done
  log_tail "$logfile"
  die "$name did not answer on 127.0.0.1:$port within 30 s; last client error: $out"
}

# The shared peer configs, or the same text if this clone has no shared/ beside it.
peer_template() {
  local name=$1
  if [[ -n "$PEERS_DIR" ]]; then
    cat "$PEERS_DIR/$name"
    return
  fi
  case "$name" in
    pgbouncer.ini) cat <<'EOF'
[databases]
* = host=127.0.0.1 port=@UPSTREAM_PORT@

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = @LISTEN_PORT@
auth_type = trust
auth_file = @DIR@/pgbouncer-users.txt
pool_mode = session
max_client_conn = 2000
default_pool_size = 200
unix_socket_dir =
logfile = @DIR@/pgbouncer.log
pidfile = @DIR@/pgbouncer.pid
EOF
      ;;
    haproxy.cfg) cat <<'EOF'
global
  maxconn 4000
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
frontend in
  bind 127.0.0.1:@LISTEN_PORT@
  default_backend out
backend out
  server s1 127.0.0.1:@UPSTREAM_PORT@
EOF
      ;;
  esac
}

start_pgbouncer() {
  local dir="$WORK/pgbouncer" port
  port=$(pg_free_port)
  mkdir -p "$dir"
  # auth_type=trust still needs the user in auth_file; the plain-text password there (and password= on
  # the database line) is what PgBouncer answers the server's SCRAM challenge with.
  printf '"%s" "%s"\n' "$UPSTREAM_USER" "$UPSTREAM_PASSWORD" > "$dir/pgbouncer-users.txt"
  peer_template pgbouncer.ini \
    | sed -e "s|@UPSTREAM_PORT@|$PG_PORT|g" -e "s|@LISTEN_PORT@|$port|g" -e "s|@DIR@|$dir|g" \
    | sed -e "/^\* = /s|\$| password=$UPSTREAM_PASSWORD|" > "$dir/pgbouncer.ini"
  PGBOUNCER_PIDFILE="$dir/pgbouncer.pid"
  # PgBouncer refuses to run as root: run it as the postgres user, daemonized, and stop it by its pidfile.
  if [[ $(id -u) -eq 0 ]]; then
    chown -R postgres: "$dir"
    chmod 600 "$dir/pgbouncer-users.txt"
    runuser -u postgres -- pgbouncer -d -q "$dir/pgbouncer.ini" >"$dir/start.log" 2>&1 \
      || { cat "$dir/start.log" >&2; log_tail "$dir/pgbouncer.log"; die "pgbouncer did not start"; }
  else
    pgbouncer -d -q "$dir/pgbouncer.ini" >"$dir/start.log" 2>&1 \
      || { cat "$dir/start.log" >&2; log_tail "$dir/pgbouncer.log"; die "pgbouncer did not start"; }
  fi
  local i
  for i in $(seq 1 50); do [[ -s "$PGBOUNCER_PIDFILE" ]] && break; sleep 0.1; done
  [[ -s "$PGBOUNCER_PIDFILE" ]] || { log_tail "$dir/pgbouncer.log"; die "pgbouncer wrote no pidfile"; }
  wait_ready pgbouncer "$port" "$UPSTREAM_USER" "$UPSTREAM_PASSWORD" "$dir/pgbouncer.log" "$(cat "$PGBOUNCER_PIDFILE")"
  add_target pgbouncer "$port" "$UPSTREAM_USER" "$UPSTREAM_PASSWORD" "$(cat "$PGBOUNCER_PIDFILE")"
}

start_haproxy() {
  local dir="$WORK/haproxy" port
  port=$(pg_free_port)
  mkdir -p "$dir"
  peer_template haproxy.cfg \
    | sed -e "s|@UPSTREAM_PORT@|$PG_PORT|g" -e "s|@LISTEN_PORT@|$port|g" > "$dir/haproxy.cfg"
  haproxy -c -q -f "$dir/haproxy.cfg" >"$dir/check.log" 2>&1 || { cat "$dir/check.log" >&2; die "haproxy config invalid"; }
  # -db: stay in the foreground so $! is haproxy itself and the trap can stop it by pid.
  haproxy -db -f "$dir/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
  local pid=$!
  CHILD_PIDS+=("$pid")
  wait_ready haproxy "$port" "$UPSTREAM_USER" "$UPSTREAM_PASSWORD" "$dir/haproxy.log" "$pid"
  add_target haproxy "$port" "$UPSTREAM_USER" "$UPSTREAM_PASSWORD" "$pid"
}

# ---------------------------------------------------------------- Gatehouse
# Clients of the gateway authenticate as the identity "bench"; the gateway logs in upstream as the
# gatehouse role with a password only it holds, exactly like production.
GH_IDENTITY=bench
GH_SECRET=""
GH_VERIFIER=""

build_gatehouse() {
  if [[ $BUILD -eq 1 ]]; then
    command -v dotnet >/dev/null 2>&1 || die "dotnet not found: cannot build Gatehouse (or use --only-direct-peers)"
    say "building Gatehouse (dotnet build src/Host -c Release)"
    dotnet build "$REPO/src/Host" -c Release -nologo -v q >"$WORK/build.log" 2>&1 \
      || { tail -n 40 "$WORK/build.log" >&2; die "dotnet build src/Host failed (log above)"; }
  fi
  [[ -x "$GH_BIN" ]] || die "Gatehouse binary not found at $GH_BIN"
}

# Print the SCRAM verifier `gatehouse secret hash` makes for a secret given on stdin.
gatehouse_hash() {
  local out
  out=$(printf '%s' "$1" | "$GH_BIN" secret hash 2>"$WORK/secret-hash.err") \
    || { cat "$WORK/secret-hash.err" >&2; die "gatehouse secret hash failed"; }
  out=$(printf '%s\n' "$out" | grep -E '^SCRAM-SHA-256\$' | tail -n1)
  [[ -n "$out" ]] || die "gatehouse secret hash printed no SCRAM-SHA-256 verifier line"
  printf '%s\n' "$out"
}

# write_gatehouse_config FILE PORT [EXTRA_YAML]
# The base configuration every Gatehouse target shares. EXTRA_YAML is appended verbatim (top-level keys,
# e.g. a policies: section) so variants such as "gatehouse+policy" are one function call each.
# TLS is off on the listener because every other target is measured in clear text too (PGSSLMODE=disable).
write_gatehouse_config() {
  local file=$1 port=$2 extra=${3:-}
  cat > "$file" <<EOF
listeners:
  - name: postgres
    protocol: postgres
    address: 127.0.0.1:$port
    tls:
      mode: disabled
    allow_cleartext_on_loopback: true
connections:
  - name: demo
    protocol: postgres
    host: 127.0.0.1
    port: $PG_PORT
    database: demo
    user: $UPSTREAM_USER
    password: { env: GATEHOUSE_BENCH_PASSWORD }
    tls: disable
identities:
  - name: $GH_IDENTITY
    secret: "$GH_VERIFIER"
    connections: [demo]
limits:
  max_connections: 1000
EOF
  if [[ -n "$extra" ]]; then
    printf '%s\n' "$extra" >> "$file"
  fi
}

# start_gatehouse NAME [POLICY_YAML] [EXTRA_YAML]: one more Gatehouse process, registered as target NAME.
# Without POLICY_YAML it runs with `policy: unrestricted` (no statement is looked at); with it, the policy is
# written next to the config and every statement is lexed, classified and decided.
start_gatehouse() {
  local name=$1 policy=${2:-} extra=${3:-} port dir
  port=$(pg_free_port)
  dir="$WORK/$name"
  mkdir -p "$dir"
  if [[ -n "$policy" ]]; then
    printf '%s\n' "$policy" > "$dir/policy.yaml"
    extra="policy: $dir/policy.yaml"$'\n'"$extra"
  else
    extra="policy: unrestricted"$'\n'"$extra"
  fi
  write_gatehouse_config "$dir/gatehouse.yaml" "$port" "$extra"
  GATEHOUSE_BENCH_PASSWORD=$UPSTREAM_PASSWORD "$GH_BIN" run --config "$dir/gatehouse.yaml" >"$dir/gatehouse.log" 2>&1 &
  local pid=$!
  CHILD_PIDS+=("$pid")
  wait_ready "$name" "$port" "$GH_IDENTITY" "$GH_SECRET" "$dir/gatehouse.log" "$pid"
  add_target "$name" "$port" "$GH_IDENTITY" "$GH_SECRET" "$pid"
}

start_gatehouse_targets() {
  GH_SECRET="bench-$(openssl rand -hex 12 2>/dev/null || echo $RANDOM$RANDOM$RANDOM)"
  GH_VERIFIER=$(gatehouse_hash "$GH_SECRET")
  wanted gatehouse && start_gatehouse gatehouse "" "recording: off"
  wanted gatehouse+policy && start_gatehouse gatehouse+policy "$(bench_policy)" "recording: off"
  wanted gatehouse+masking && start_gatehouse gatehouse+masking "$(bench_policy)"$'\n'"$(bench_masking)" "recording: off"
  # Recordings go to the work directory, on the same disk as everything else; the key is generated there.
  wanted gatehouse+recording || return 0
  start_gatehouse gatehouse+recording "$(bench_policy)"$'\n'"$(bench_masking)" "recording: { directory: $WORK/gatehouse+recording/recordings }"
}

# The policy above plus masking: two columns of big_rows masked by origin (payload keeps its last 8 characters,
# email becomes a keyed hash) and every built-in detector on every other text value (the note, ids in text form;
# pgbench_accounts' columns on the -S workloads).
bench_masking() {
  cat <<EOF
masking:
  key: { value: "bench-masking-key-0123456789" }
  rules:
    - name: payload
      columns: [public.big_rows.payload]
      style: keep_last
      keep: 8
    - name: email
      columns: [public.big_rows.email]
      style: hash
    - name: detectors
      detect: [card, ssn, email, phone, iban, aws_key, secret_token, jwt, pem_private_key]
EOF
}

# A realistic policy: global deny rules, a role with a class allow-list, shape rules and object rules (so every
# statement is lexed, classified, its objects extracted and matched), the identity bound to it.
bench_policy() {
  cat <<EOF
rules:
  - name: no-file-access
    classes: [file_access]
    action: deny
  - name: no-copy-program
    copy: [program, file]
    action: deny
roles:
  app:
    allow: [read, write, copy, transaction, session]
    rules:
      - name: no-unbounded-writes
        shapes: [delete_without_where, update_without_where]
        action: deny
      - name: payments-need-approval
        classes: [write]
        tables: ["billing.*", public.payments]
        action: require_approval
      - name: no-dblink
        functions: ["dblink*", "lo_*"]
        action: deny
bindings:
  - identities: [$GH_IDENTITY]
    connections: [demo]
    role: app
EOF
}

# ---------------------------------------------------------------- measurement
workload_args() {
  case "$1" in
    S-c1) echo "-S -c 1 -j 1" ;;
    S-c8) echo "-S -c 8 -j 2" ;;
    S-prepared-c8) echo "-S -M prepared -c 8 -j 2" ;;
    big-c4) echo "-f $WORK/big_rows.sql -c 4 -j 2" ;;
    *) die "unknown workload $1" ;;
  esac
}

declare -A TPS=()      # "$workload|$target" -> best tps over the rounds
declare -A CPU=()      # "$workload|$target" -> least CPU time of the proxy per transaction (us) over the rounds
FAILURES=0

run_one() {
  local w=$1 i=$2 r=$3 name=${T_NAMES[$2]} out tps before after count cpu=""
  local log="$WORK/runs/$w.$name.$r.log"
  before=$(cpu_ticks "${T_PIDS[$i]}")
  # shellcheck disable=SC2046  # workload_args is a word list on purpose
  if PGPASSWORD=${T_PASSWORDS[$i]} PGSSLMODE=disable \
      pgbench -n -T "$DURATION" $(workload_args "$w") \
        -h 127.0.0.1 -p "${T_PORTS[$i]}" -U "${T_USERS[$i]}" demo >"$log" 2>&1; then
    tps=$(awk '/^tps = / { print $3; exit }' "$log")
  else
    tps=""
  fi
  if [[ -z "$tps" ]]; then
    FAILURES=$((FAILURES + 1))
    printf '  %-16s round %d  %-18s FAILED\n' "$w" "$r" "$name"
    tail -n 5 "$log" | sed 's/^/    | /'
    return 0
  fi
  after=$(cpu_ticks "${T_PIDS[$i]}")
  count=$(awk '/^number of transactions actually processed: / { print $6; exit }' "$log")
  if [[ -n "$before" && -n "$after" && "${count:-0}" -gt 0 ]]; then
    cpu=$(awk -v t="$((after - before))" -v hz="$CLK_TCK" -v n="$count" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
  fi
  printf '  %-16s round %d  %-18s %12.1f tps%s\n' "$w" "$r" "$name" "$tps" "${cpu:+  $cpu us CPU/txn}"
  local key="$w|$name" best=${TPS["$w|$name"]:-0}
  if awk -v a="$tps" -v b="$best" 'BEGIN { exit !(a > b) }'; then TPS[$key]=$tps; fi
  if [[ -n "$cpu" ]] && { [[ -z "${CPU[$key]:-}" ]] || awk -v a="$cpu" -v b="${CPU[$key]}" 'BEGIN { exit !(a < b) }'; }; then CPU[$key]=$cpu; fi
}

ratio() {
  local a=${TPS["$1|$2"]:-} b=${TPS["$1|$3"]:-}
  if [[ -z "$a" || -z "$b" ]]; then echo "n/a"; return; fi
  awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
}

# cpu_ratio WORKLOAD A B: CPU per transaction of proxy A over proxy B.
cpu_ratio() {
  local a=${CPU["$1|$2"]:-} b=${CPU["$1|$3"]:-}
  if [[ -z "$a" || -z "$b" ]]; then echo "n/a"; return; fi
  awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
}

# ---------------------------------------------------------------- main
ensure_packages
[[ "$DURATION" =~ ^[0-9]+$ && "$DURATION" -gt 0 ]] || die "--duration must be a positive integer"
[[ "$ROUNDS" =~ ^[0-9]+$ && "$ROUNDS" -gt 0 ]] || die "--rounds must be a positive integer"

WORK=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
chmod 755 "$WORK"
mkdir -p "$WORK/runs"

GH_WANTED=0
for t in "${TARGETS[@]}"; do [[ "$t" == gatehouse* ]] && GH_WANTED=1; done
[[ $GH_WANTED -eq 1 ]] || ONLY_DIRECT_PEERS=1
if [[ $ONLY_DIRECT_PEERS -eq 0 ]]; then
  build_gatehouse
fi

PG_DIR="$WORK/pg"
PG_PORT=$(pg_free_port)
UPSTREAM_USER=gatehouse
UPSTREAM_PASSWORD="up-$(openssl rand -hex 12 2>/dev/null || echo $RANDOM$RANDOM$RANDOM)"
say "starting PostgreSQL on 127.0.0.1:$PG_PORT ($PG_DIR)"
pg_start "$PG_DIR" "$PG_PORT" || die "PostgreSQL did not start"
pg_psql "$PG_DIR" "$PG_PORT" -q -d postgres -v gatehouse_password="$UPSTREAM_PASSWORD" \
  -f "$REPO/scripts/lib/sample-data.sql" >"$WORK/sample-data.log" 2>&1 \
  || { cat "$WORK/sample-data.log" >&2; die "loading scripts/lib/sample-data.sql failed"; }
say "pgbench -i -s 10 into demo"
pgbench -i -s 10 -q -h "$PG_DIR/sock" -p "$PG_PORT" -U "$UPSTREAM_USER" demo >"$WORK/pgbench-init.log" 2>&1 \
  || { tail -n 20 "$WORK/pgbench-init.log" >&2; die "pgbench -i failed"; }
pg_psql "$PG_DIR" "$PG_PORT" -q -d demo -c 'CHECKPOINT' >/dev/null
echo 'SELECT * FROM big_rows;' > "$WORK/big_rows.sql"

wait_ready direct "$PG_PORT" "$UPSTREAM_USER" "$UPSTREAM_PASSWORD" "$PG_DIR/pg.log"
wanted direct && add_target direct "$PG_PORT" "$UPSTREAM_USER" "$UPSTREAM_PASSWORD"
if wanted pgbouncer; then
  say "starting PgBouncer (session mode)"
  start_pgbouncer
fi
if wanted haproxy; then
  say "starting HAProxy (TCP)"
  start_haproxy
fi
if [[ $ONLY_DIRECT_PEERS -eq 0 ]]; then
  say "starting Gatehouse"
  start_gatehouse_targets
fi

echo
say "targets:$(for i in "${!T_NAMES[@]}"; do printf ' %s=127.0.0.1:%s' "${T_NAMES[$i]}" "${T_PORTS[$i]}"; done)"
say "machine: $(nproc) cores; $(pg__bin)/postgres $("$(pg__bin)/postgres" --version | awk '{print $3}'); $(pgbouncer --version | head -n1); $(haproxy -v | head -n1 | awk '{print "HAProxy", $3}')"
say "$DURATION s per measurement, targets interleaved per workload, best tps of $ROUNDS rounds; all targets in clear text (PGSSLMODE=disable)"
for w in "${WORKLOADS[@]}"; do
  for r in $(seq 1 "$ROUNDS"); do
    for i in "${!T_NAMES[@]}"; do
      run_one "$w" "$i" "$r"
    done
  done
done

echo
echo "tps (best of $ROUNDS rounds of ${DURATION} s; higher is better)"
printf '%-16s' workload
for name in "${T_NAMES[@]}"; do printf ' %14s' "$name"; done
printf '\n'
for w in "${WORKLOADS[@]}"; do
  printf '%-16s' "$w"
  for name in "${T_NAMES[@]}"; do
    v=${TPS["$w|$name"]:-}
    if [[ -n "$v" ]]; then printf ' %14.1f' "$v"; else printf ' %14s' FAILED; fi
  done
  printf '\n'
done
# One client: 1/tps is the round-trip latency a single query sees, the number the peers README quotes.
printf 'latency S-c1 (us per query = 1e6/tps):'
for name in "${T_NAMES[@]}"; do
  v=${TPS["S-c1|$name"]:-}
  if [[ -n "$v" ]]; then printf ' %s=%.0f' "$name" "$(awk -v t="$v" 'BEGIN { print 1e6 / t }')"; fi
done
printf '\n'
# CPU time of the proxy process per transaction: less noisy than tps on a shared machine (it does not count the
# time a proxy waits for a core), and the cost each feature adds in isolation.
echo "proxy CPU per transaction (us, least of $ROUNDS rounds; lower is better)"
for w in "${WORKLOADS[@]}"; do
  line="cpu $w"
  for name in "${T_NAMES[@]}"; do
    [[ -n "${CPU["$w|$name"]:-}" ]] && line+=" $name=${CPU["$w|$name"]}"
  done
  echo "$line"
done
printf '\n'

for w in "${WORKLOADS[@]}"; do
  if [[ $ONLY_DIRECT_PEERS -eq 0 ]]; then
    echo "pg $w gatehouse/direct=$(ratio "$w" gatehouse direct) gatehouse/pgbouncer=$(ratio "$w" gatehouse pgbouncer)"
    # Each Gatehouse variant (gatehouse+policy, ...) gets its own line, and its ratio to plain gatehouse.
    for name in "${T_NAMES[@]}"; do
      if [[ "$name" == gatehouse?* ]]; then
        variant=${name#gatehouse}
        line="pg $w$variant gatehouse/direct=$(ratio "$w" "$name" direct) gatehouse/pgbouncer=$(ratio "$w" "$name" pgbouncer) vs-gatehouse=$(ratio "$w" "$name" gatehouse)"
        if [[ "$name" == gatehouse+recording ]]; then
          line+=" vs-masking=$(ratio "$w" "$name" gatehouse+masking) cpu-vs-masking=$(cpu_ratio "$w" "$name" gatehouse+masking)"
        fi
        echo "$line"
      fi
    done
  fi
  echo "peers $w pgbouncer/direct=$(ratio "$w" pgbouncer direct) haproxy/direct=$(ratio "$w" haproxy direct)"
done
if [[ $ONLY_DIRECT_PEERS -eq 1 ]]; then
  echo "(gatehouse skipped: --only-direct-peers)"
fi
if [[ -d "$WORK/gatehouse+recording/recordings" ]]; then
  echo "recorded by gatehouse+recording: $(find "$WORK/gatehouse+recording/recordings" -type f | wc -l) sessions, $(du -sb "$WORK/gatehouse+recording/recordings" | awk '{printf "%.1f MB", $1 / 1e6}') on disk (LZ4)"
fi

if [[ $FAILURES -gt 0 ]]; then
  die "$FAILURES measurement(s) failed (see the output above; --keep keeps $WORK/runs)"
fi
