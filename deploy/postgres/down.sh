#!/usr/bin/env bash
# Stops the cluster started by deploy/postgres/up.sh (pg_ctl stop -m fast).
#   down.sh            stop, keep the data for the next up.sh
#   down.sh --purge    stop and delete the whole state folder (data, logs)
# Uses the same IOT_SERVICES_DIR / PG_BINDIR settings as up.sh.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
. "$HERE/common.sh"

PURGE=0
for arg in "$@"; do
  case "$arg" in
    --purge) PURGE=1 ;;
    -h|--help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) pg_die "unknown argument: $arg (usage: down.sh [--purge])" ;;
  esac
done
pg_clean_env
pg_resolve_state_dir

if [ ! -d "$PG_STATE" ]; then
  pg_say "nothing to do: no state folder at $PG_STATE"
  exit 0
fi

exec 9>"$PG_STATE/.lock"
if command -v flock >/dev/null 2>&1; then
  flock -w 120 9 || pg_die "another up.sh/down.sh holds $PG_STATE/.lock"
fi

if pg_find_bindir; then
  if pg_is_running; then
    pg_say "stopping the cluster in $PG_DATA (port $(pg_running_port))"
    if ! pg_as_owner "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 60 >>"$PG_SETUP_LOG" 2>&1; then
      pg_say "fast shutdown timed out: trying immediate"
      pg_as_owner "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m immediate -w -t 30 >>"$PG_SETUP_LOG" 2>&1 \
        || { pg_log_tail; pg_die "could not stop the cluster"; }
    fi
    pg_say "stopped"
  else
    pg_say "not running"
  fi
elif [ -f "$PG_DATA/postmaster.pid" ]; then
  # No binaries left (uninstalled?): ask the postmaster for a fast shutdown by its own pid.
  pid=$(head -n 1 "$PG_DATA/postmaster.pid")
  if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
    pg_say "no pg_ctl found: sending SIGINT (fast shutdown) to postmaster $pid"
    kill -INT "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    ! kill -0 "$pid" 2>/dev/null || pg_die "postmaster $pid did not stop"
  fi
fi
rm -f "$PG_URL_FILE"

if [ "$PURGE" = 1 ]; then
  # Guard against a mistyped IOT_SERVICES_DIR: only delete a folder up.sh made.
  [ -f "$PG_STATE/$PG_MARKER" ] || pg_die "$PG_STATE has no $PG_MARKER marker: not deleting it"
  rm -rf "$PG_STATE"
  pg_say "purged $PG_STATE"
fi
