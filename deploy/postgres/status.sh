#!/usr/bin/env bash
# Prints the URL of the cluster started by deploy/postgres/up.sh and exits 0 if it is running;
# prints nothing and exits 3 if it is not.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
. "$HERE/common.sh"

pg_clean_env
pg_resolve_state_dir
pg_find_bindir || exit 3
pg_is_running || exit 3
if [ -s "$PG_URL_FILE" ]; then
  cat "$PG_URL_FILE"
else
  echo "postgres://postgres@127.0.0.1:$(pg_running_port)/${IOT_PG_DB:-iot}"
fi
