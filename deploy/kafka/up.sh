#!/usr/bin/env bash
# Starts a single-node Apache Kafka broker (KRaft, broker+controller in one JVM) on 127.0.0.1 for
# tests and development, and prints its address as the last line of stdout (progress goes to
# stderr), e.g.
#   BROKERS=$(bash deploy/kafka/up.sh)    ->  127.0.0.1:59092
#
# - Jars: deploy/kafka/pom.xml copied from Maven Central by mvn into a cache outside the repo,
#   ${IOT_KAFKA_LIBS:-${XDG_CACHE_HOME:-$HOME/.cache}/iot-monitor/kafka-libs-<version>}; reused
#   once complete. Needs Java 17+ (JAVA_HOME or PATH) and, for the first fetch, mvn.
# - State: ${IOT_SERVICES_DIR:-$HOME/.cache/iot-monitor/services}/kafka (data/, server.properties,
#   kafka.log, setup.log, kafka.pid); as root it follows deploy/postgres to /var/tmp/iot-monitor.
# - Ports: KAFKA_PORT (default: the last one used in this state folder, else 59092) and
#   KAFKA_CONTROLLER_PORT (default KAFKA_PORT + 1). No topic auto-creation.
# - Idempotent: storage is formatted once; a broker already running on this state folder and
#   these ports is kept. down.sh + up.sh restarts it with the same topics and data.
# Stop it with deploy/kafka/down.sh [--purge].
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
. "$HERE/common.sh"

case "${1:-}" in
  -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  '') ;;
  *) kafka_die "unknown argument: $1 (usage: up.sh)" ;;
esac

kafka_check_port () {   # name value
  { [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge 1024 ] && [ "$2" -le 65535 ]; } \
    || kafka_die "$1 must be a port number in 1024..65535, got '$2'"
}

kafka_require_java
kafka_resolve_state_dir

# Ports: explicit, else those of the last start in this state folder (a restart keeps its
# address), else the defaults.
if [ -n "${KAFKA_PORT:-}" ]; then
  kafka_check_port KAFKA_PORT "$KAFKA_PORT"
  PORT=$KAFKA_PORT
  CPORT=${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}
elif LAST_PORT=$(kafka_conf_port 2>/dev/null) && [ -n "$LAST_PORT" ]; then
  PORT=$LAST_PORT
  CPORT=${KAFKA_CONTROLLER_PORT:-$(kafka_conf_controller_port)}
else
  PORT=$KAFKA_DEFAULT_PORT
  CPORT=${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}
fi
kafka_check_port KAFKA_CONTROLLER_PORT "$CPORT"
[ "$PORT" != "$CPORT" ] || kafka_die "KAFKA_PORT and KAFKA_CONTROLLER_PORT are both $PORT"
HEAP=${IOT_KAFKA_HEAP:-512m}
[[ "$HEAP" =~ ^[0-9]+[kKmMgG]?$ ]] || kafka_die "IOT_KAFKA_HEAP must look like 512m, got '$HEAP'"

on_exit () {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    kafka_say "failed (exit $rc); state folder: ${KAFKA_STATE:-?}"
    kafka_log_tail
  fi
}
trap on_exit EXIT

mkdir -p "$KAFKA_STATE"
touch "$KAFKA_STATE/$KAFKA_MARKER" "$KAFKA_SETUP_LOG"
kafka_lock_state

log () { printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" >>"$KAFKA_SETUP_LOG"; kafka_say "$*"; }
now_ms () {
  if [ -n "${EPOCHREALTIME:-}" ]; then local t=${EPOCHREALTIME/[.,]/}; echo $(( t / 1000 )); else echo $(( $(date +%s) * 1000 )); fi
}
T0=$(now_ms)

kafka_resolve_libs
log "jars: $KAFKA_LIBS; java: $KAFKA_JAVA; state: $KAFKA_STATE"

# --- already running? --------------------------------------------------------------------------
if PID=$(kafka_pid); then
  if [ "$(kafka_conf_port)" = "$PORT" ] && [ "$(kafka_conf_controller_port)" = "$CPORT" ]; then
    log "already running (pid $PID) on 127.0.0.1:$PORT: reusing it"
  else
    log "running on port $(kafka_conf_port)/$(kafka_conf_controller_port), wanted $PORT/$CPORT: restarting"
    kafka_stop
  fi
fi

# --- configure, format (once), start -------------------------------------------------------------
if ! kafka_is_running; then
  for p in "$PORT" "$CPORT"; do
    if kafka_port_in_use "$p"; then
      kafka_die "port $p on 127.0.0.1 is taken by another process; choose others with KAFKA_PORT=... (and KAFKA_CONTROLLER_PORT=...)"
    fi
  done

  sed -e "s#@DATA@#$KAFKA_DATA#g" -e "s#@PORT@#$PORT#g" -e "s#@CONTROLLER_PORT@#$CPORT#g" \
    "$HERE/server.properties" >"$KAFKA_CONF.tmp"
  mv "$KAFKA_CONF.tmp" "$KAFKA_CONF"
  cp "$HERE/log4j2.properties" "$KAFKA_STATE/log4j2.properties"
  LOG4J=(-Dlog4j2.configurationFile="$KAFKA_STATE/log4j2.properties")

  if [ -f "$KAFKA_DATA/meta.properties" ]; then
    CLUSTER_ID=$(sed -n 's/^cluster\.id=//p' "$KAFKA_DATA/meta.properties")
    log "reusing formatted storage in $KAFKA_DATA (cluster id $CLUSTER_ID)"
  else
    if [ -e "$KAFKA_DATA" ]; then
      log "removing a half-formatted $KAFKA_DATA"
      rm -rf "$KAFKA_DATA"
    fi
    if [ -s "$KAFKA_CLUSTER_ID_FILE" ]; then
      CLUSTER_ID=$(cat "$KAFKA_CLUSTER_ID_FILE")
    else
      CLUSTER_ID=$(kafka_new_cluster_id)
    fi
    log "formatting $KAFKA_DATA (cluster id $CLUSTER_ID)"
    "$KAFKA_JAVA" -Xmx256m -XX:TieredStopAtLevel=1 "${LOG4J[@]}" -cp "$KAFKA_LIBS/*" \
      kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$KAFKA_CONF" --ignore-formatted \
      >>"$KAFKA_SETUP_LOG" 2>&1 9>&- || kafka_die "storage format failed"
    [ -f "$KAFKA_DATA/meta.properties" ] || kafka_die "format left no $KAFKA_DATA/meta.properties"
  fi
  printf '%s\n' "$CLUSTER_ID" >"$KAFKA_CLUSTER_ID_FILE"

  # JVM: the GC flags of kafka-run-class.sh. The client-compiler-only JIT (TieredStopAtLevel=1)
  # starts faster on small machines; IOT_KAFKA_JIT=full keeps C2 for long, heavy runs.
  JOPTS=(-Xms"$HEAP" -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
    -Djava.awt.headless=true -Dkafka.logs.dir="$KAFKA_STATE" "${LOG4J[@]}")
  case "${IOT_KAFKA_JIT:-c1}" in
    c1) JOPTS+=(-XX:TieredStopAtLevel=1) ;;
    full) ;;
    *) kafka_die "IOT_KAFKA_JIT must be c1 or full, got '$IOT_KAFKA_JIT'" ;;
  esac
  if [ -n "${IOT_KAFKA_JAVA_OPTS:-}" ]; then
    read -r -a EXTRA <<<"$IOT_KAFKA_JAVA_OPTS"
    JOPTS+=("${EXTRA[@]}")
  fi

  # One previous log is kept, so that the readiness check only sees this start's lines.
  [ -f "$KAFKA_LOG" ] && mv -f "$KAFKA_LOG" "$KAFKA_LOG.1"
  : >"$KAFKA_LOG"
  rm -f "$KAFKA_PID_FILE" "$KAFKA_ADDR_FILE"
  log "starting on 127.0.0.1:$PORT (controller $CPORT, heap $HEAP; log: $KAFKA_LOG)"
  # The launcher writes its own pid and then becomes the JVM; setsid (when present) detaches
  # the broker from our terminal and process group, so Ctrl-C here does not reach it.
  # shellcheck disable=SC2016   # $$ and $@ belong to the inner shell
  LAUNCH=(bash -c 'echo $$ >"$0" && exec "$@"' "$KAFKA_PID_FILE"
    "$KAFKA_JAVA" "${JOPTS[@]}" -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_CONF")
  if command -v setsid >/dev/null 2>&1; then LAUNCH=(setsid "${LAUNCH[@]}"); else LAUNCH=(nohup "${LAUNCH[@]}"); fi
  (cd "$KAFKA_STATE" && exec "${LAUNCH[@]}") </dev/null >>"$KAFKA_LOG" 2>&1 9>&- &
fi

# --- wait until ready: "Kafka Server started" in the log and the port accepts connections ----------
ready=0
PID=
for (( i = 0; i < KAFKA_START_TIMEOUT * 4; i++ )); do
  if [ -z "$PID" ] && [ -s "$KAFKA_PID_FILE" ]; then PID=$(head -n 1 "$KAFKA_PID_FILE"); fi
  if [ -n "$PID" ] && ! kill -0 "$PID" 2>/dev/null; then
    kafka_die "the broker (pid $PID) exited during start-up"
  fi
  if [ -n "$PID" ] && grep -q 'Kafka Server started' "$KAFKA_LOG" 2>/dev/null && kafka_port_in_use "$PORT"; then
    ready=1
    break
  fi
  sleep 0.25
done
if [ "$ready" != 1 ]; then
  [ -z "$PID" ] || kill -KILL "$PID" 2>/dev/null || true
  rm -f "$KAFKA_PID_FILE"
  kafka_die "the broker did not become ready on 127.0.0.1:$PORT within ${KAFKA_START_TIMEOUT}s (killed it)"
fi

ADDR="127.0.0.1:$PORT"
printf '%s\n' "$ADDR" >"$KAFKA_ADDR_FILE"
T1=$(now_ms)
log "ready: $ADDR (pid $PID, $(( (T1 - T0) / 1000 )).$(printf '%03d' $(( (T1 - T0) % 1000 )))s)"
printf '%s\n' "$ADDR"
