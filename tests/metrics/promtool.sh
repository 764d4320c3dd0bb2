#!/usr/bin/env bash
# Prints the path of promtool (Debian's `prometheus` package), installing
# the package once if it is missing. Safe from many test processes at
# once (flock).
set -euo pipefail
if command -v promtool >/dev/null 2>&1; then
  command -v promtool
  exit 0
fi
root="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "$root/target"
exec 9>"$root/target/promtool.lock"
flock 9
if ! command -v promtool >/dev/null 2>&1; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >&2
fi
command -v promtool
