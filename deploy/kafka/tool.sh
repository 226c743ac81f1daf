#!/usr/bin/env bash
# Runs one of Kafka's own command-line tools with the broker's cached jars (see up.sh), e.g.
#   bash deploy/kafka/tool.sh ProducerPerformance --topic t --num-records 100000 --record-size 200 \
#     --throughput -1 --producer-props bootstrap.servers=127.0.0.1:59092
#   bash deploy/kafka/tool.sh TopicCommand --bootstrap-server 127.0.0.1:59092 --list
# The first argument is a class of org.apache.kafka.tools (kafka-tools jar); the rest is passed on.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
. "$HERE/common.sh"

[ $# -ge 1 ] || kafka_die "usage: tool.sh <ToolClass> [arguments...]"
tool=$1; shift
[[ "$tool" =~ ^[A-Za-z][A-Za-z0-9]*$ ]] || kafka_die "not a tool class name: $tool"
kafka_require_java
kafka_libs_dir
kafka_resolve_libs
exec "$KAFKA_JAVA" -Xmx512m -Dlog4j2.configurationFile="$HERE/log4j2.properties" -cp "$KAFKA_LIBS/*" "org.apache.kafka.tools.$tool" "$@"
