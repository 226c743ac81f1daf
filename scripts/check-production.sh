#!/usr/bin/env bash
# Checks the documented production path (README, "In production"): `npm pack` builds dist/ and
# web/dist and packs them; the tarball is installed into a fresh folder with production
# dependencies only (no TypeScript, tsx or Vite); `iot-monitor start` there, on a fresh data
# folder, serves /health and the dashboard, and stops cleanly on SIGTERM.
#   bash scripts/check-production.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say () { printf '[production] %s\n' "$*"; }
tmp=$(mktemp -d)
pid=
cleanup () {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

tgz=$(npm pack --silent --pack-destination "$tmp" | tail -n 1)
say "packed $tgz ($(du -h "$tmp/$tgz" | cut -f1))"
mkdir "$tmp/app"
if ! (cd "$tmp/app" && npm init -y >/dev/null && npm install --omit=dev --no-audit --no-fund --prefer-offline "$tmp/$tgz" >"$tmp/install.log" 2>&1); then
  cat "$tmp/install.log"
  say "ERROR: npm install of the tarball failed"
  exit 1
fi
for dev in typescript tsx vite react; do
  if [ -e "$tmp/app/node_modules/$dev" ]; then say "ERROR: the dev dependency $dev was installed"; exit 1; fi
done
grep -q 'patched by iot-monitor' "$tmp/app/node_modules/postgres/src/connection.js" \
  || { say "ERROR: the postinstall did not apply the postgres.js COPY fix"; exit 1; }
say "installed with $(find "$tmp/app/node_modules" -mindepth 1 -maxdepth 2 -name package.json -o -mindepth 2 -maxdepth 3 -path '*/@*/*/package.json' | wc -l) production packages"

# Embedded defaults, as a new user runs it (not the services a CI run may have exported).
DATABASE_URL='' KAFKA_BROKERS='' "$tmp/app/node_modules/.bin/iot-monitor" start --data-dir "$tmp/data" --port 0 --status 0 >"$tmp/out.log" 2>&1 &
pid=$!
url=
for _ in $(seq 1 300); do
  url=$(sed -n 's/.*is running: \(http:\/\/[^ ]*\) .*/\1/p' "$tmp/out.log" | head -n 1)
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$tmp/out.log"; say "ERROR: iot-monitor exited"; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { cat "$tmp/out.log"; say "ERROR: no listening address in 30 s"; exit 1; }
health=$(curl -fsS "$url/health")
say "GET $url/health: $health"
case "$health" in *'"status":"ok"'*) ;; *) say "ERROR: not healthy"; exit 1 ;; esac
curl -fsS "$url/" | grep -q '<div id="root">' || { say "ERROR: the dashboard is not served"; exit 1; }
kill -TERM "$pid"
code=0
wait "$pid" || code=$?
pid=
grep -q 'Stopped cleanly' "$tmp/out.log" || { cat "$tmp/out.log"; say "ERROR: no clean stop (exit $code)"; exit 1; }
[ "$code" = 0 ] || { cat "$tmp/out.log"; say "ERROR: exit code $code"; exit 1; }
say "served /health and the dashboard from the packed build, stopped cleanly on SIGTERM"
