#!/usr/bin/env bash
# Makes the Flink job runnable and prints its Java class path as the last line of stdout
# (progress goes to stderr), e.g.
#   CP=$(bash deploy/flink/build.sh)
#   java -cp "$CP" io.iotmonitor.flink.IotFlinkJob --set ...      (iot-monitor flink does this)
#
# - Jars: deploy/flink/pom.xml copied from Maven Central by mvn into a cache outside the repo,
#   ${IOT_FLINK_LIBS:-${XDG_CACHE_HOME:-$HOME/.cache}/iot-monitor/flink-libs-<version>}; reused
#   once complete. Needs Java 17+ with javac and, for the first fetch, mvn.
# - The launcher (src/main/java) and job.sql, compiled with javac into iot-flink-job.jar beside
#   the jar cache (flink-job-<checksum of the sources>); rebuilt only when they change.
# `--libs-only` fetches the jars and prints nothing (CI warms the cache with it).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
. "$HERE/common.sh"

case "${1:-}" in
  -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  --libs-only) flink_resolve_libs; exit 0 ;;
  '') ;;
  *) flink_die "unknown argument: $1 (usage: build.sh [--libs-only])" ;;
esac

flink_build_job
printf '%s:%s/*\n' "$FLINK_JOB_JAR" "$FLINK_LIBS"
