#!/usr/bin/env bash
# Starts/stops the local services the tests need (see DESIGN.md section 6).
#
#   scripts/services.sh up     [service...]          start (idempotent), then print export lines
#   scripts/services.sh down   [--purge] [service...] stop; --purge also deletes their data
#   scripts/services.sh env    [service...]          print `export VAR=...` lines for running services
#   scripts/services.sh status [service...]          show what is running
#
# Typical use:  eval "$(bash scripts/services.sh up)"   or   eval "$(bash scripts/services.sh env)"
# Services: $IOT_SERVICES (space-separated, default "postgres kafka"), or the names given.
# Settings: IOT_SERVICES_DIR (state folder, default $HOME/.cache/iot-monitor/services),
#           PGPORT (default 55432), KAFKA_PORT (default 59092; controller KAFKA_PORT + 1).
#           Progress goes to stderr; stdout carries only export lines.
#
# Adding a service NAME: write NAME_up, NAME_down (gets --purge or nothing), NAME_env (prints
# export lines; returns non-zero when not running) and NAME_status, and add NAME to KNOWN.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KNOWN="postgres kafka"      # later: mosquitto chromium
DEFAULT_SERVICES="${IOT_SERVICES:-postgres kafka}"

say () { printf '[services] %s\n' "$*" >&2; }
die () { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

# --- PostgreSQL (deploy/postgres) ----------------------------------------------------------------
postgres_up () {
  bash "$ROOT/deploy/postgres/up.sh" >/dev/null
}
postgres_down () {
  bash "$ROOT/deploy/postgres/down.sh" "$@"
}
postgres_env () {
  local url
  url=$(bash "$ROOT/deploy/postgres/status.sh") || return 1
  printf 'export DATABASE_URL=%q\n' "$url"
}
postgres_status () {
  local url
  if url=$(bash "$ROOT/deploy/postgres/status.sh"); then
    echo "postgres: running  $url"
  else
    echo "postgres: stopped"
  fi
}

# --- Kafka (deploy/kafka: single KRaft node on 127.0.0.1) ---------------------------------------
kafka_up () {
  bash "$ROOT/deploy/kafka/up.sh" >/dev/null
}
kafka_down () {
  bash "$ROOT/deploy/kafka/down.sh" "$@"
}
kafka_env () {
  local addr
  addr=$(bash "$ROOT/deploy/kafka/status.sh") || return 1
  printf 'export KAFKA_BROKERS=%q\n' "$addr"
}
kafka_status () {
  local addr
  if addr=$(bash "$ROOT/deploy/kafka/status.sh"); then
    echo "kafka: running  $addr"
  else
    echo "kafka: stopped"
  fi
}

# --- Mosquitto / Chromium: not yet --------------------------------------------------------------
# mosquitto_up () { command -v mosquitto || apt-get install -y mosquitto; mosquitto -d ...; }
# chromium_env () { echo "export CHROME_PATH=$(command -v chromium)"; }

# --- dispatch -------------------------------------------------------------------------------------
usage () { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit "${1:-2}"; }

cmd=${1:-}
[ -n "$cmd" ] || usage 2
shift
purge=()
names=()
for arg in "$@"; do
  case "$arg" in
    --purge) [ "$cmd" = down ] || die "--purge only goes with down"; purge=(--purge) ;;
    -h|--help) usage 0 ;;
    -*) die "unknown option: $arg" ;;
    *) names+=("$arg") ;;
  esac
done
if [ ${#names[@]} -eq 0 ]; then
  read -r -a names <<<"$DEFAULT_SERVICES"
fi
for n in "${names[@]}"; do
  [[ " $KNOWN " == *" $n "* ]] || die "unknown service '$n' (known: $KNOWN)"
done

print_env () {
  local n rc=0
  for n in "${names[@]}"; do
    if ! "${n}_env"; then
      say "$n is not running (start it with: bash scripts/services.sh up $n)"
      rc=1
    fi
  done
  return "$rc"
}

case "$cmd" in
  up)
    for n in "${names[@]}"; do
      say "starting $n"
      "${n}_up" || die "$n failed to start"
    done
    print_env
    ;;
  down)
    # Stop in reverse order; keep going past a failure, but report it.
    rc=0
    for (( i=${#names[@]}-1; i>=0; i-- )); do
      n=${names[$i]}
      say "stopping $n"
      "${n}_down" "${purge[@]}" || { say "$n: stop failed"; rc=1; }
    done
    exit "$rc"
    ;;
  env) print_env ;;
  status) for n in "${names[@]}"; do "${n}_status"; done ;;
  *) usage 2 ;;
esac
