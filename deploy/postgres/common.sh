# shellcheck shell=bash disable=SC2034   # variables here are used by the scripts that source it
# Shared helpers for deploy/postgres/{up,down,status}.sh and .ci/run. Source it; don't run it.
#
# Settings (environment):
#   IOT_SERVICES_DIR  state folder for all local services
#                     (default: $HOME/.cache/iot-monitor/services; the cluster lives in ./postgres)
#   PGPORT            TCP port on 127.0.0.1 (default 55432)
#   IOT_PG_DB         database to create (default iot)
#   PG_BINDIR         PostgreSQL server binaries (default: pg_config --bindir, else the newest
#                     /usr/lib/postgresql/*/bin that has initdb)

PG_DEFAULT_PORT=55432
PG_FALLBACK_SERVICES_DIR=/var/tmp/iot-monitor/services
PG_MARKER=.iot-monitor-postgres

pg_say () { printf '[postgres] %s\n' "$*" >&2; }
pg_die () { printf '[postgres] ERROR: %s\n' "$*" >&2; exit 1; }

pg_is_root () { [ "$(id -u)" = 0 ]; }

# Libpq/server variables in the caller's environment must not steer our own commands.
pg_clean_env () {
  unset PGHOST PGHOSTADDR PGDATABASE PGUSER PGSERVICE PGSERVICEFILE PGOPTIONS PGDATA \
    PGSSLMODE PGPASSFILE PGPASSWORD PGTARGETSESSIONATTRS PGREQUIRESSL || true
}

# Sets PG_BIN to a folder holding initdb, pg_ctl, postgres, psql. Returns 1 if none found.
pg_find_bindir () {
  local cand d
  PG_BIN=
  if [ -n "${PG_BINDIR:-}" ]; then
    [ -x "$PG_BINDIR/initdb" ] && [ -x "$PG_BINDIR/pg_ctl" ] && { PG_BIN=$PG_BINDIR; return 0; }
    pg_die "PG_BINDIR=$PG_BINDIR has no initdb/pg_ctl"
  fi
  if command -v pg_config >/dev/null 2>&1; then
    d=$(pg_config --bindir 2>/dev/null || true)
    if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then PG_BIN=$d; return 0; fi
  fi
  # Newest major version first (sort -V handles 9.6 < 10 < 15 < 16).
  for cand in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
    if [ -x "$cand/initdb" ] && [ -x "$cand/pg_ctl" ]; then PG_BIN=$cand; return 0; fi
  done
  return 1
}

# Installs Debian's PostgreSQL server when running as root on Debian/Ubuntu.
pg_install_server () {
  if ! pg_is_root || ! [ -f /etc/debian_version ] || ! command -v apt-get >/dev/null 2>&1; then
    pg_die "PostgreSQL server binaries not found. Install them (Debian: apt-get install postgresql) or set PG_BINDIR."
  fi
  pg_say "server binaries not found: installing Debian's postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2 || pg_die "apt-get update failed"
  apt-get install -y -q --no-install-recommends postgresql >&2 || pg_die "apt-get install postgresql failed"
  pg_find_bindir || pg_die "postgresql installed but no initdb found under /usr/lib/postgresql/*/bin"
}

pg_major_of_bin () { "$PG_BIN/postgres" --version | sed -E 's/^[^0-9]*([0-9]+).*/\1/'; }

# Can the postgres user reach (traverse) this existing directory, with every parent on the way?
pg_postgres_can_reach () {
  (cd / && runuser -u postgres -- test -x "$1" -a -d "$1") 2>/dev/null
}

# Sets PG_STATE (state folder), PG_DATA, PG_RUN (socket dir), PG_LOG, PG_SETUP_LOG, PG_URL_FILE.
# As root the server runs as the postgres user, which must be able to reach the state folder.
# $HOME is /root (mode 700) for root, so the default then moves to $PG_FALLBACK_SERVICES_DIR.
pg_resolve_state_dir () {
  local base="${IOT_SERVICES_DIR:-${HOME:-/tmp}/.cache/iot-monitor/services}" probe
  if pg_is_root; then
    id postgres >/dev/null 2>&1 || pg_die "running as root but there is no 'postgres' user (install postgresql)"
    probe=$base
    while [ ! -d "$probe" ]; do probe=$(dirname "$probe"); done
    if ! pg_postgres_can_reach "$probe"; then
      if [ -n "${IOT_SERVICES_DIR:-}" ]; then
        pg_die "IOT_SERVICES_DIR=$IOT_SERVICES_DIR is not reachable by the postgres user (server can't run as root); chmod o+x its parents or pick another folder"
      fi
      base=$PG_FALLBACK_SERVICES_DIR
    fi
  fi
  case "$base" in /*) ;; *) base="$PWD/$base" ;; esac
  PG_STATE="$base/postgres"
  PG_DATA="$PG_STATE/data"
  PG_RUN="$PG_STATE/run"
  PG_LOG="$PG_STATE/postgres.log"
  PG_SETUP_LOG="$PG_STATE/setup.log"
  PG_URL_FILE="$PG_STATE/url"
  # A Unix socket path is limited to 107 bytes.
  [ ${#PG_RUN} -le 80 ] || pg_die "state folder path too long for a Unix socket: $PG_RUN (set IOT_SERVICES_DIR shorter)"
}

# Run a command as the cluster owner (postgres when we are root), from a folder it can read.
# fd 9 (the state folder's lock) is closed so that a started postmaster does not inherit it.
pg_as_owner () {
  if pg_is_root; then
    (cd "$PG_STATE" && runuser -u postgres -- "$@") 9>&-
  else
    (cd "$PG_STATE" && "$@") 9>&-
  fi
}

pg_is_initialised () { [ -f "$PG_DATA/PG_VERSION" ]; }

# 0 if a postmaster is running on $PG_DATA.
pg_is_running () {
  pg_is_initialised || return 1
  [ -f "$PG_DATA/postmaster.pid" ] || return 1
  pg_as_owner "$PG_BIN/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1
}

# Port of the running postmaster (line 4 of postmaster.pid).
pg_running_port () { sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null; }

# 0 if something accepts TCP connections on 127.0.0.1:$1.
pg_port_in_use () {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# First port from $1 (default 55432) that nothing listens on.
pg_free_port () {
  local p=${1:-$PG_DEFAULT_PORT} last=$(( ${1:-$PG_DEFAULT_PORT} + 200 ))
  while [ "$p" -le "$last" ]; do
    pg_port_in_use "$p" || { echo "$p"; return 0; }
    p=$((p + 1))
  done
  return 1
}

pg_log_tail () {
  local f
  for f in "$PG_SETUP_LOG" "$PG_LOG"; do
    [ -s "$f" ] || continue
    printf '\n----- last 40 lines of %s -----\n' "$f" >&2
    tail -n 40 "$f" >&2
  done
}
