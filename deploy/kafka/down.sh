#!/usr/bin/env bash
# Stops the broker started by deploy/kafka/up.sh: SIGTERM (a controlled shutdown), then SIGKILL
# if it is still running after ~20 s (IOT_KAFKA_STOP_TIMEOUT).
#   down.sh            stop, keep topics and data for the next up.sh
#   down.sh --purge    stop and delete the whole state folder (data, logs, cluster id)
# Uses the same IOT_SERVICES_DIR setting as up.sh.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
. "$HERE/common.sh"

PURGE=0
for arg in "$@"; do
  case "$arg" in
    --purge) PURGE=1 ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) kafka_die "unknown argument: $arg (usage: down.sh [--purge])" ;;
  esac
done
kafka_resolve_state_dir

if [ ! -d "$KAFKA_STATE" ]; then
  kafka_say "nothing to do: no state folder at $KAFKA_STATE"
  exit 0
fi

kafka_lock_state

if kafka_is_running; then
  kafka_stop || { kafka_log_tail; kafka_die "could not stop the broker"; }
else
  kafka_say "not running"
  rm -f "$KAFKA_PID_FILE" "$KAFKA_ADDR_FILE"
fi

if [ "$PURGE" = 1 ]; then
  # Guard against a mistyped IOT_SERVICES_DIR: only delete a folder up.sh made.
  [ -f "$KAFKA_STATE/$KAFKA_MARKER" ] || kafka_die "$KAFKA_STATE has no $KAFKA_MARKER marker: not deleting it"
  rm -rf "$KAFKA_STATE"
  kafka_say "purged $KAFKA_STATE"
fi
