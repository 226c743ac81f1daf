# shellcheck shell=bash disable=SC2034   # variables here are used by the scripts that source it
# Shared helpers for deploy/kafka/{up,down,status}.sh and .ci/run. Source it; don't run it.
#
# Settings (environment):
#   IOT_SERVICES_DIR       state folder for all local services
#                          (default: $HOME/.cache/iot-monitor/services; the broker lives in ./kafka)
#   KAFKA_PORT             client (PLAINTEXT) port on 127.0.0.1 (default: the port of the last start
#                          in this state folder, else 59092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port on 127.0.0.1 (default: KAFKA_PORT + 1, so 59093)
#   IOT_KAFKA_LIBS         folder of broker jars (default:
#                          ${XDG_CACHE_HOME:-$HOME/.cache}/iot-monitor/kafka-libs-<version>), filled
#                          from Maven Central with `mvn dependency:copy-dependencies` on pom.xml
#   IOT_KAFKA_HEAP         broker heap (default 512m)
#   IOT_KAFKA_JAVA_OPTS    extra JVM options for the broker (word-split)
#   IOT_KAFKA_JIT          c1 (default: client JIT only, faster start) or full (C1 + C2)
#   IOT_KAFKA_START_TIMEOUT / IOT_KAFKA_STOP_TIMEOUT   seconds (default 90 / 20)
#   JAVA_HOME              Java 17+ to use (default: `java` on PATH)

KAFKA_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KAFKA_POM="$KAFKA_HERE/pom.xml"
KAFKA_DEFAULT_PORT=59092
KAFKA_FALLBACK_SERVICES_DIR=/var/tmp/iot-monitor/services
KAFKA_MARKER=.iot-monitor-kafka
KAFKA_LIBS_MARKER=.complete
KAFKA_START_TIMEOUT=${IOT_KAFKA_START_TIMEOUT:-90}   # seconds until "Kafka Server started"
KAFKA_STOP_TIMEOUT=${IOT_KAFKA_STOP_TIMEOUT:-20}     # seconds of controlled shutdown before SIGKILL
[[ "$KAFKA_START_TIMEOUT$KAFKA_STOP_TIMEOUT" =~ ^[0-9]+$ ]] \
  || { printf '[kafka] ERROR: IOT_KAFKA_START_TIMEOUT/IOT_KAFKA_STOP_TIMEOUT must be whole seconds\n' >&2; exit 1; }
KAFKA_MVN_DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

kafka_say () { printf '[kafka] %s\n' "$*" >&2; }
kafka_die () { printf '[kafka] ERROR: %s\n' "$*" >&2; exit 1; }

kafka_is_root () { [ "$(id -u)" = 0 ]; }
kafka_is_debian_root () {
  kafka_is_root && [ -f /etc/debian_version ] && command -v apt-get >/dev/null 2>&1
}

# The version in pom.xml (<kafka.version>), used to name the jar cache.
kafka_version () {
  local v
  v=$(sed -n 's:.*<kafka\.version>\([^<]*\)</kafka\.version>.*:\1:p' "$KAFKA_POM" | head -n 1)
  [ -n "$v" ] || kafka_die "no <kafka.version> in $KAFKA_POM"
  printf '%s\n' "$v"
}

# Sets KAFKA_JAVA to a Java 17+ launcher ($JAVA_HOME/bin/java, else java on PATH) or dies.
kafka_require_java () {
  local ver major
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
    KAFKA_JAVA="$JAVA_HOME/bin/java"
  elif command -v java >/dev/null 2>&1; then
    KAFKA_JAVA=$(command -v java)
  else
    kafka_die "java not found: Kafka 4.x needs Java 17+ (Debian: apt-get install default-jre-headless; or set JAVA_HOME)"
  fi
  ver=$("$KAFKA_JAVA" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n 1)
  major=${ver%%[.+-]*}
  if [ "$major" = 1 ]; then major=$(printf '%s' "$ver" | cut -d. -f2); fi   # 1.8.0_x -> 8
  [[ "$major" =~ ^[0-9]+$ ]] || kafka_die "cannot read the Java version of $KAFKA_JAVA ('$ver')"
  [ "$major" -ge 17 ] || kafka_die "$KAFKA_JAVA is Java $ver; Kafka 4.x needs Java 17+ (set JAVA_HOME)"
}

kafka_require_mvn () {
  command -v mvn >/dev/null 2>&1 \
    || kafka_die "mvn not found: it fetches the broker jars from Maven Central (Debian: apt-get install maven), or point IOT_KAFKA_LIBS at a complete jar folder"
}

# Installs what .ci/run needs to run the broker when root on Debian/Ubuntu: Java if missing, and
# Maven if missing while the jar cache is not complete yet.
kafka_install_jdk_tools () {
  local pkgs=()
  command -v java >/dev/null 2>&1 || [ -x "${JAVA_HOME:-/nonexistent}/bin/java" ] || pkgs+=(default-jre-headless)
  kafka_libs_dir
  kafka_libs_complete || command -v mvn >/dev/null 2>&1 || pkgs+=(maven)
  [ ${#pkgs[@]} -gt 0 ] || return 0
  kafka_is_debian_root || kafka_die "missing ${pkgs[*]}: install Java 17+ and Maven"
  kafka_apt_install "${pkgs[@]}"
}

# apt-get install, running `apt-get update` first unless the package lists already know them
# (and again if the install fails on stale lists).
kafka_apt_install () {
  export DEBIAN_FRONTEND=noninteractive
  kafka_say "installing Debian packages: $*"
  if apt-cache show "$@" >/dev/null 2>&1 \
    && apt-get install -y -q --no-install-recommends "$@" >&2; then
    return 0
  fi
  apt-get update -q >&2 || kafka_die "apt-get update failed"
  apt-get install -y -q --no-install-recommends "$@" >&2 || kafka_die "apt-get install $* failed"
}

# kcat (Debian package kcat, librdkafka-based CLI) for interop tests: installed via apt-get when
# missing and we are root on Debian/Ubuntu; otherwise fails with a hint.
kafka_install_kcat () {
  command -v kcat >/dev/null 2>&1 && return 0
  kafka_is_debian_root \
    || kafka_die "kcat not found: install it (Debian/Ubuntu: apt-get install kcat; macOS: brew install kcat)"
  kafka_apt_install kcat
  command -v kcat >/dev/null 2>&1 || kafka_die "kcat installed but not on PATH"
}

# --- broker jars -------------------------------------------------------------------------------

# Sets KAFKA_LIBS (the jar folder; not necessarily filled yet).
kafka_libs_dir () {
  local v
  v=$(kafka_version)
  KAFKA_LIBS="${IOT_KAFKA_LIBS:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/iot-monitor/kafka-libs-$v}"
  case "$KAFKA_LIBS" in /*) ;; *) KAFKA_LIBS="$PWD/$KAFKA_LIBS" ;; esac
}

# What the marker of a complete jar folder holds: the version and a checksum of pom.xml, so that
# editing the pom (e.g. a new log4j version) refreshes the cache.
kafka_libs_stamp () {
  printf 'kafka %s pom-cksum %s\n' "$(kafka_version)" "$(cksum <"$KAFKA_POM" | cut -d' ' -f1,2)"
}

kafka_libs_complete () {
  [ -f "$KAFKA_LIBS/$KAFKA_LIBS_MARKER" ] \
    && [ "$(cat "$KAFKA_LIBS/$KAFKA_LIBS_MARKER")" = "$(kafka_libs_stamp)" ] \
    && compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null
}

# Fills $KAFKA_LIBS from Maven Central unless it is already complete. The copy goes into a
# temporary sibling folder that replaces the old one only once mvn succeeded.
kafka_resolve_libs () {
  local tmp stamp n
  kafka_libs_dir
  kafka_libs_complete && return 0
  mkdir -p "$(dirname "$KAFKA_LIBS")"
  # One resolver at a time per cache folder (several state folders may start at once).
  exec 8>"$KAFKA_LIBS.lock"
  if command -v flock >/dev/null 2>&1; then
    flock -w 300 8 || kafka_die "another process holds $KAFKA_LIBS.lock"
  fi
  if kafka_libs_complete; then exec 8>&-; return 0; fi
  kafka_require_mvn
  stamp=$(kafka_libs_stamp)
  tmp="$KAFKA_LIBS.tmp.$$"
  rm -rf "$tmp"
  kafka_say "fetching the broker jars ($stamp) from Maven Central into $KAFKA_LIBS"
  # mvn -q prints only errors (and stray ANSI resets): its output is shown only if it fails.
  if ! mvn -B -q -Dstyle.color=never -f "$KAFKA_POM" "$KAFKA_MVN_DEP_PLUGIN:copy-dependencies" \
      -DincludeScope=runtime -DoutputDirectory="$tmp" >"$tmp.log" 2>&1 </dev/null; then
    sed 's/\x1b\[[0-9;]*m//g' "$tmp.log" >&2
    rm -rf "$tmp" "$tmp.log"
    kafka_die "mvn copy-dependencies failed (is Maven Central reachable? see the output above)"
  fi
  rm -f "$tmp.log"
  compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || { rm -rf "$tmp"; kafka_die "mvn copied no kafka_2.13 jar into $tmp"; }
  printf '%s\n' "$stamp" >"$tmp/$KAFKA_LIBS_MARKER"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
  n=$(find "$KAFKA_LIBS" -name '*.jar' | wc -l)
  kafka_say "cached $((n)) jars ($(du -sh "$KAFKA_LIBS" | cut -f1)) in $KAFKA_LIBS"
  exec 8>&-
}

# --- state folder ---------------------------------------------------------------------------

# Can the postgres user traverse this existing directory? (Same rule as deploy/postgres, so that
# both services share one state folder when we are root.)
kafka_postgres_can_reach () {
  (cd / && runuser -u postgres -- test -x "$1" -a -d "$1") 2>/dev/null
}

# Sets KAFKA_STATE and the paths inside it. As root, when IOT_SERVICES_DIR is not set, follows
# deploy/postgres: if the postgres user cannot reach the default folder (root's $HOME is mode 700)
# both services move to /var/tmp/iot-monitor/services.
kafka_resolve_state_dir () {
  local base="${IOT_SERVICES_DIR:-${HOME:-/tmp}/.cache/iot-monitor/services}" probe
  if kafka_is_root && [ -z "${IOT_SERVICES_DIR:-}" ] && id postgres >/dev/null 2>&1; then
    probe=$base
    while [ ! -d "$probe" ]; do probe=$(dirname "$probe"); done
    kafka_postgres_can_reach "$probe" || base=$KAFKA_FALLBACK_SERVICES_DIR
  fi
  case "$base" in /*) ;; *) base="$PWD/$base" ;; esac
  KAFKA_STATE="$base/kafka"
  KAFKA_DATA="$KAFKA_STATE/data"
  KAFKA_CONF="$KAFKA_STATE/server.properties"
  KAFKA_LOG="$KAFKA_STATE/kafka.log"
  KAFKA_SETUP_LOG="$KAFKA_STATE/setup.log"
  KAFKA_PID_FILE="$KAFKA_STATE/kafka.pid"
  KAFKA_ADDR_FILE="$KAFKA_STATE/address"
  KAFKA_CLUSTER_ID_FILE="$KAFKA_STATE/cluster-id"
}

# Takes the state folder's lock on fd 9 (one up.sh/down.sh at a time per state folder).
kafka_lock_state () {
  exec 9>"$KAFKA_STATE/.lock"
  if command -v flock >/dev/null 2>&1; then
    flock -w 120 9 || kafka_die "another up.sh/down.sh holds $KAFKA_STATE/.lock"
  fi
}

# The command line of process $1 ('' if it is gone).
kafka_cmdline_of () {
  if [ -r "/proc/$1/cmdline" ]; then
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true
  else
    ps -o args= -p "$1" 2>/dev/null || true
  fi
}

# Prints the pid of the broker running on this state folder; returns 1 if there is none. The
# command line must name our server.properties, so a recycled pid is not mistaken for it.
kafka_pid () {
  local pid
  [ -s "$KAFKA_PID_FILE" ] || return 1
  pid=$(head -n 1 "$KAFKA_PID_FILE")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  case "$(kafka_cmdline_of "$pid")" in
    *kafka.Kafka*"$KAFKA_CONF"*) printf '%s\n' "$pid" ;;
    *) return 1 ;;
  esac
}

kafka_is_running () { kafka_pid >/dev/null; }

# A setting of the generated server.properties in the state folder (what the broker runs with).
kafka_conf_get () {
  [ -f "$KAFKA_CONF" ] || return 1
  sed -n "s/^$1=//p" "$KAFKA_CONF" | tail -n 1
}
kafka_conf_port () {   # client port
  kafka_conf_get listeners | sed -n 's/.*PLAINTEXT:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p'
}
kafka_conf_controller_port () {
  kafka_conf_get listeners | sed -n 's/.*CONTROLLER:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p'
}

# 0 if something accepts TCP connections on 127.0.0.1:$1.
kafka_port_in_use () {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# First port from $1 (default 59092) such that it and the next one (the controller's) are free.
kafka_free_port () {
  local p=${1:-$KAFKA_DEFAULT_PORT} last=$(( ${1:-$KAFKA_DEFAULT_PORT} + 200 ))
  while [ "$p" -le "$last" ]; do
    if ! kafka_port_in_use "$p" && ! kafka_port_in_use $((p + 1)); then echo "$p"; return 0; fi
    p=$((p + 1))
  done
  return 1
}

# A new KRaft cluster id: 16 random bytes, base64url without padding (22 characters), like
# `kafka-storage random-uuid`, which never starts with '-'.
kafka_new_cluster_id () {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)
    case "$id" in -*|AAAAAAAAAAAAAAAAAAAAA[AB]) ;; *) printf '%s\n' "$id"; return 0 ;; esac
  done
}

# Stops the broker on this state folder: SIGTERM (controlled shutdown), then SIGKILL after
# $KAFKA_STOP_TIMEOUT seconds. Returns 0 when nothing runs any more.
kafka_stop () {
  local pid i
  pid=$(kafka_pid) || { rm -f "$KAFKA_PID_FILE"; return 0; }
  kafka_say "stopping the broker (pid $pid, port $(kafka_conf_port))"
  kill -TERM "$pid" 2>/dev/null || true
  for (( i = 0; i < KAFKA_STOP_TIMEOUT * 4; i++ )); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then
    kafka_say "no controlled shutdown within ${KAFKA_STOP_TIMEOUT}s: sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for (( i = 0; i < 40; i++ )); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    ! kill -0 "$pid" 2>/dev/null || kafka_die "broker $pid survived SIGKILL"
  fi
  rm -f "$KAFKA_PID_FILE" "$KAFKA_ADDR_FILE"
  kafka_say "stopped"
}

kafka_log_tail () {
  local f
  for f in "$KAFKA_SETUP_LOG" "$KAFKA_LOG"; do
    [ -s "$f" ] || continue
    printf '\n----- last 40 lines of %s -----\n' "$f" >&2
    tail -n 40 "$f" >&2
  done
}
