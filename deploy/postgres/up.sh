#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for tests and development, and prints its URL as the
# last line of stdout (progress goes to stderr), e.g.
#   URL=$(bash deploy/postgres/up.sh)    ->  postgres://postgres@127.0.0.1:55432/iot
#
# - Binaries: $PG_BINDIR, else `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin;
#   if none and we are root on Debian, `apt-get install postgresql`.
# - State: ${IOT_SERVICES_DIR:-$HOME/.cache/iot-monitor/services}/postgres (data/, run/ for the
#   Unix socket, postgres.log, setup.log). As root the server runs as the `postgres` user; if that
#   user cannot reach the default folder (root's $HOME is mode 700) it moves to
#   /var/tmp/iot-monitor/services/postgres.
# - Trust auth, 127.0.0.1 only, port ${PGPORT:-55432}; durability settings stay at their defaults.
# - Idempotent: an initialised cluster is reused, a running one on the same port is kept.
# Stop it with deploy/postgres/down.sh [--purge].
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
. "$HERE/common.sh"

case "${1:-}" in
  -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  '') ;;
  *) pg_die "unknown argument: $1 (usage: up.sh)" ;;
esac

PORT=${PGPORT:-$PG_DEFAULT_PORT}
DB=${IOT_PG_DB:-iot}
{ [[ "$PORT" =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1024 ] && [ "$PORT" -le 65535 ]; } \
  || pg_die "PGPORT must be a port number in 1024..65535, got '$PORT'"
[[ "$DB" =~ ^[a-z_][a-z0-9_]*$ ]] || pg_die "IOT_PG_DB must match [a-z_][a-z0-9_]*, got '$DB'"
pg_clean_env

pg_find_bindir || pg_install_server
pg_resolve_state_dir

on_exit () {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    pg_say "failed (exit $rc); state folder: ${PG_STATE:-?}"
    pg_log_tail
  fi
}
trap on_exit EXIT

umask 022   # the postgres user must be able to traverse new parent folders
mkdir -p "$PG_STATE" "$PG_RUN"
touch "$PG_STATE/$PG_MARKER" "$PG_SETUP_LOG" "$PG_LOG"
if pg_is_root; then
  chown postgres: "$PG_STATE" "$PG_RUN" "$PG_SETUP_LOG" "$PG_LOG"
fi
chmod 700 "$PG_RUN"

# One up.sh/down.sh at a time per state folder.
exec 9>"$PG_STATE/.lock"
if command -v flock >/dev/null 2>&1; then
  flock -w 120 9 || pg_die "another up.sh/down.sh holds $PG_STATE/.lock"
fi

log () { printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" >>"$PG_SETUP_LOG"; pg_say "$*"; }

MAJOR=$(pg_major_of_bin)
log "binaries: $PG_BIN (PostgreSQL $MAJOR); state: $PG_STATE"

# --- initdb (once) ---------------------------------------------------------------------------
if pg_is_initialised; then
  DATA_MAJOR=$(cat "$PG_DATA/PG_VERSION")
  [ "$DATA_MAJOR" = "$MAJOR" ] || pg_die "$PG_DATA was initialised by PostgreSQL $DATA_MAJOR but the binaries are $MAJOR: run deploy/postgres/down.sh --purge"
  log "reusing initialised cluster in $PG_DATA"
else
  if [ -e "$PG_DATA" ]; then
    log "removing a half-initialised $PG_DATA"
    rm -rf "$PG_DATA"
  fi
  LOCALE=C
  if locale -a 2>/dev/null | grep -qixE 'c\.utf-?8'; then LOCALE=C.UTF-8; fi
  log "initdb $PG_DATA (UTF8, locale $LOCALE)"
  pg_as_owner "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust \
    --encoding=UTF8 --locale="$LOCALE" >>"$PG_SETUP_LOG" 2>&1 \
    || pg_die "initdb failed"
  printf "\n# Settings for iot-monitor's local/test cluster (rewritten by deploy/postgres/up.sh)\ninclude 'iot-monitor.conf'\n" \
    | pg_as_owner tee -a "$PG_DATA/postgresql.conf" >/dev/null
fi

# --- configuration (rewritten on every run; later lines win over postgresql.conf) -------------
pg_as_owner tee "$PG_DATA/iot-monitor.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$PG_RUN'
unix_socket_permissions = 0700
max_connections = 100
shared_buffers = 256MB
# No replication or archiving: WAL only for crash recovery (fsync/synchronous_commit stay on).
wal_level = minimal
max_wal_senders = 0
archive_mode = off
log_line_prefix = '%m [%p] %q%u@%d '
EOF
pg_as_owner tee "$PG_DATA/pg_hba.conf" >/dev/null <<'EOF'
# TYPE  DATABASE  USER  ADDRESS        METHOD   (throwaway cluster: trust, loopback only)
local   all       all                  trust
host    all       all   127.0.0.1/32   trust
host    all       all   ::1/128        trust
EOF

# --- start (or reuse) ---------------------------------------------------------------------------
if pg_is_running; then
  RUNNING_PORT=$(pg_running_port)
  if [ "$RUNNING_PORT" = "$PORT" ]; then
    log "already running on port $PORT: reusing it"
    pg_as_owner "$PG_BIN/pg_ctl" reload -D "$PG_DATA" >>"$PG_SETUP_LOG" 2>&1 || true
  else
    log "running on port $RUNNING_PORT, wanted $PORT: restarting"
    pg_as_owner "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 60 >>"$PG_SETUP_LOG" 2>&1 \
      || pg_die "could not stop the cluster running on port $RUNNING_PORT"
  fi
fi
if ! pg_is_running; then
  if pg_port_in_use "$PORT"; then
    pg_die "port $PORT on 127.0.0.1 is taken by another process; choose another with PGPORT=..."
  fi
  log "starting on 127.0.0.1:$PORT (log: $PG_LOG)"
  pg_as_owner "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w -t 90 >>"$PG_SETUP_LOG" 2>&1 \
    || pg_die "pg_ctl start failed"
fi

ready=0
for _ in $(seq 1 120); do
  if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres; then ready=1; break; fi
  sleep 0.5
done
[ "$ready" = 1 ] || pg_die "server did not become ready on 127.0.0.1:$PORT within 60 s"

# --- database ---------------------------------------------------------------------------------
PSQL=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres)
if [ "$("${PSQL[@]}" -d postgres -tAc "select 1 from pg_database where datname = '$DB'")" != 1 ]; then
  log "creating database $DB"
  "${PSQL[@]}" -d postgres -c "create database \"$DB\"" >>"$PG_SETUP_LOG" 2>&1 \
    || pg_die "create database $DB failed"
fi

URL="postgres://postgres@127.0.0.1:$PORT/$DB"
printf '%s\n' "$URL" >"$PG_URL_FILE"
log "ready: $URL"
printf '%s\n' "$URL"
