#!/usr/bin/env bash
# Prints the address (127.0.0.1:<port>) of the broker started by deploy/kafka/up.sh and exits 0
# if it is running and accepts connections; prints nothing and exits 1 if it is not.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
. "$HERE/common.sh"

case "${1:-}" in
  -h|--help) sed -n '2,3p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  '') ;;
  *) kafka_die "unknown argument: $1 (usage: status.sh)" ;;
esac

kafka_resolve_state_dir
kafka_is_running || exit 1
PORT=$(kafka_conf_port)
[ -n "$PORT" ] && kafka_port_in_use "$PORT" || exit 1
echo "127.0.0.1:$PORT"
