# shellcheck shell=bash
# Throwaway PostgreSQL servers for scripts and benchmarks. Source this file; it defines functions only.
#
#   pg_start DIR PORT        initdb into DIR/data (if not there yet) and start on 127.0.0.1:PORT
#   pg_stop DIR              stop the server started in DIR (immediate: it is throwaway)
#   pg_psql DIR PORT ARGS... psql as the bootstrap superuser "postgres" over the unix socket in DIR/sock
#   pg_free_port             print a TCP port that is free on 127.0.0.1 right now
#
# Works as root (initdb/postgres refuse to run as root, so they run as the postgres system user via
# runuser) and as the postgres user itself (or any other non-root user, who then owns the cluster).
# Host (TCP) connections need a SCRAM password; the unix socket is trusted, which is how pg_psql and the
# scripts create roles without ever handling a superuser password.

# Debian's server binaries live outside PATH; let a caller point elsewhere with PG_BIN.
pg__bin() {
  if [[ -n "${PG_BIN:-}" ]]; then
    printf '%s\n' "$PG_BIN"
    return
  fi
  if [[ -x /usr/lib/postgresql/15/bin/initdb ]]; then
    printf '%s\n' /usr/lib/postgresql/15/bin
    return
  fi
  # Any other installed major version: the newest.
  local d v best="" best_v=-1
  for d in /usr/lib/postgresql/*/bin; do
    v=${d#/usr/lib/postgresql/}
    v=${v%/bin}
    if [[ "$v" =~ ^[0-9]+$ && -x "$d/initdb" ]] && (( v > best_v )); then
      best=$d
      best_v=$v
    fi
  done
  if [[ -n "$best" ]]; then
    printf '%s\n' "$best"
    return
  fi
  echo "pg.sh: PostgreSQL server binaries not found (apt-get install -y postgresql, or set PG_BIN)" >&2
  return 1
}

# Run a command as the user that owns the cluster: postgres when we are root, ourselves otherwise.
pg__as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# The postgres user must be able to reach DIR: mktemp directories are 0700 and root's, so open DIR itself
# and any 0700 parents under the temp directory. Parents elsewhere (e.g. /root) are not changed behind the
# caller's back: we fail and say which one.
pg__make_reachable() {
  local dir=$1
  [[ $(id -u) -eq 0 ]] || return 0
  chmod 755 "$dir"
  local tmp_root=${TMPDIR:-/tmp}
  tmp_root=${tmp_root%/}
  local p=$dir
  while [[ "$p" != "/" && -n "$p" ]]; do
    p=$(dirname "$p")
    if ! runuser -u postgres -- test -x "$p" 2>/dev/null; then
      if [[ "$p" == /tmp/* || "$p" == "$tmp_root"/* ]]; then
        chmod o+x "$p"
      else
        echo "pg.sh: the postgres user cannot traverse $p (needed to reach $dir); use a directory under /tmp" >&2
        return 1
      fi
    fi
  done
}

pg__log_tail() {
  local dir=$1
  if [[ -f "$dir/pg.log" ]]; then
    echo "---- last lines of $dir/pg.log ----" >&2
    tail -n 30 "$dir/pg.log" >&2
    echo "----" >&2
  fi
}

pg_start() {
  local dir=${1:?usage: pg_start DIR PORT} port=${2:?usage: pg_start DIR PORT}
  local bin
  bin=$(pg__bin) || return 1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd -P)
  pg__make_reachable "$dir" || return 1
  mkdir -p "$dir/sock"
  touch "$dir/pg.log"
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres: "$dir/sock" "$dir/pg.log"
  fi

  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    mkdir -p "$dir/data"
    if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir/data"; fi
    chmod 700 "$dir/data"
    # --no-sync: a throwaway cluster need not survive a power cut. -U postgres: the same superuser name
    # whoever runs this, so pg_psql never has to guess.
    if ! pg__as_owner "$bin/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C \
        --auth-local=trust --auth-host=scram-sha-256 --no-sync --no-instructions \
        >"$dir/initdb.log" 2>&1; then
      echo "pg.sh: initdb failed in $dir/data:" >&2
      tail -n 30 "$dir/initdb.log" >&2
      return 1
    fi
    # Durability off: benchmarks measure the proxies, not the disk.
    pg__as_owner tee -a "$dir/data/postgresql.conf" >/dev/null <<EOF

# ---- throwaway settings from scripts/lib/pg.sh ----
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/sock'
max_connections = 300
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
password_encryption = 'scram-sha-256'
logging_collector = off
log_min_messages = warning
EOF
  else
    # Restarting an existing cluster on another port: the last setting wins.
    printf "port = %s\n" "$port" | pg__as_owner tee -a "$dir/data/postgresql.conf" >/dev/null
  fi

  # -W: do not let pg_ctl wait; we wait with pg_isready below so the timeout and the error are ours.
  if ! pg__as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/pg.log" -W start >"$dir/pg_ctl.log" 2>&1; then
    echo "pg.sh: pg_ctl start failed:" >&2
    cat "$dir/pg_ctl.log" >&2
    pg__log_tail "$dir"
    return 1
  fi

  local timeout=${PG_START_TIMEOUT:-30} waited=0
  until "$bin/pg_isready" -q -h "$dir/sock" -p "$port" -t 1 >/dev/null 2>&1; do
    if (( waited >= timeout * 10 )); then
      echo "pg.sh: PostgreSQL did not become ready on 127.0.0.1:$port within ${timeout}s" >&2
      pg__log_tail "$dir"
      return 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  # The TCP listener is what everyone else uses; check it answers too.
  if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 5 >/dev/null 2>&1; then
    echo "pg.sh: PostgreSQL answers on its socket but not on 127.0.0.1:$port" >&2
    pg__log_tail "$dir"
    return 1
  fi
}

pg_stop() {
  local dir=${1:?usage: pg_stop DIR}
  local bin
  bin=$(pg__bin) || return 1
  [[ -f "$dir/data/postmaster.pid" ]] || return 0
  # Immediate: nothing in a throwaway cluster is worth a checkpoint.
  if ! pg__as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1; then
    local pid
    pid=$(head -n1 "$dir/data/postmaster.pid" 2>/dev/null || true)
    if [[ "$pid" =~ ^[0-9]+$ ]]; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
}

pg_psql() {
  local dir=${1:?usage: pg_psql DIR PORT ARGS...} port=${2:?usage: pg_psql DIR PORT ARGS...}
  shift 2
  local bin
  bin=$(pg__bin) || return 1
  # The socket is trusted, so no password; -X keeps a developer's ~/.psqlrc out of scripted runs.
  "$bin/psql" -X -v ON_ERROR_STOP=1 -h "$dir/sock" -p "$port" -U postgres "$@"
}

pg_free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
    return
  fi
  # Without python: random ports until one has no listener (only a listener could make bind fail here).
  local p _
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "pg.sh: no free port found" >&2
  return 1
}
