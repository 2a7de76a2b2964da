#!/usr/bin/env bash
# The one command that runs every test, on a fresh Debian machine or a developer's.
# Installs the external programs the tests drive (PostgreSQL, PgBouncer, HAProxy, psycopg2, lz4, openssl,
# and Chromium, which renders the HTML access review headless) only when one is missing, builds the
# solution once, runs all test projects, and ends with a plain "N passed, N failed, N skipped" line.
# Exits non-zero on any failure (and when no test ran, which always means test discovery broke;
# ALLOW_NO_TESTS=1 accepts that).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
export PATH="$PATH:/usr/sbin:/sbin"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

say() { printf '[test %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf 'scripts/test.sh: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- system packages
missing=()
have_pg_server=0
for d in /usr/lib/postgresql/*/bin; do
  if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then have_pg_server=1; fi
done
[[ $have_pg_server -eq 1 ]] || missing+=("postgresql server (initdb)")
for c in psql pgbench pgbouncer haproxy lz4 openssl chromium; do
  command -v "$c" >/dev/null 2>&1 || missing+=("$c")
done
# Debian's interpreter, not whatever python3 is first on PATH (pyenv...): that is where the Debian
# python3-psycopg2 package lands, and what the psycopg2 client tests run.
if ! /usr/bin/python3 -c 'import psycopg2' >/dev/null 2>&1; then
  missing+=("python3-psycopg2")
fi
[[ -f /etc/ssl/certs/ca-certificates.crt ]] || missing+=("ca-certificates")

if [[ ${#missing[@]} -gt 0 ]]; then
  say "missing: ${missing[*]}; installing Debian packages"
  [[ $(id -u) -eq 0 ]] || die "not root: install them with: sudo apt-get install -y postgresql postgresql-contrib pgbouncer haproxy python3-psycopg2 lz4 openssl ca-certificates chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q || die "apt-get update failed"
  apt-get install -y -q \
      postgresql postgresql-contrib pgbouncer haproxy python3 python3-psycopg2 lz4 openssl ca-certificates chromium \
    || die "apt-get install failed"
else
  say "system packages present"
fi

command -v dotnet >/dev/null 2>&1 || die "dotnet (SDK 10) not found on PATH"

# ---------------------------------------------------------------- build and test
say "dotnet build Engine.sln -c Release"
dotnet build Engine.sln -c Release -nologo || die "build failed"

RESULTS=$(mktemp -d /tmp/gatehouse-test-results.XXXXXX)
trap 'rm -rf "$RESULTS"' EXIT

say "dotnet test Engine.sln -c Release --no-build"
test_rc=0
# The hang timeout bounds one stuck test (CI has a hard 90-minute limit for the whole run): the test host is
# killed and the run reports which test hung, instead of the job silently running out of time.
dotnet test Engine.sln -c Release --no-build -nologo \
  --logger "console;verbosity=normal" \
  --logger "trx" \
  --results-directory "$RESULTS" \
  --blame-hang-timeout 10m --blame-hang-dump-type none \
  || test_rc=$?

# Sum the per-assembly TRX counters into the one closing line CI and people read.
total=0 passed=0 failed=0 skipped=0
counter() { printf '%s' "$1" | grep -o " $2=\"[0-9]*\"" | grep -o '[0-9][0-9]*' || echo 0; }
shopt -s nullglob globstar
trx_files=("$RESULTS"/**/*.trx)
for f in "${trx_files[@]}"; do
  counters=$(grep -o '<Counters [^>]*>' "$f" | head -n1 || true)
  get() { counter "$counters" "$1"; }
  total=$((total + $(get total)))
  passed=$((passed + $(get passed)))
  failed=$((failed + $(get failed) + $(get error) + $(get timeout) + $(get aborted)))
  # xunit's skipped tests are counted in total but not in executed (notExecuted stays 0).
  skipped=$((skipped + $(get total) - $(get executed)))
done

echo
echo "test assemblies: ${#trx_files[@]}"
echo "tests: $passed passed, $failed failed, $skipped skipped"

if [[ $test_rc -ne 0 ]]; then
  die "dotnet test exited with $test_rc"
fi
if [[ $failed -gt 0 ]]; then
  die "$failed test(s) failed"
fi
if [[ $total -eq 0 && "${ALLOW_NO_TESTS:-0}" != 1 ]]; then
  die "no test ran (test discovery broken?); set ALLOW_NO_TESTS=1 to accept"
fi
