#!/usr/bin/env bash
# `npm ci` of the package in tests/NAME (its package.json and committed
# package-lock.json) into target/NAME/, never into the source tree.
# Reinstalls only when the two files changed or node_modules is missing.
# Safe to run from many processes at once (flock). Prints target/NAME.
#
# Usage: tests/npm-ci.sh NAME     (e.g. browser, client)
set -euo pipefail
name="$1"
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/tests/$name"
build="$root/target/$name"
command -v node >/dev/null || { echo "npm-ci.sh: node is not installed (Node >= 20 is needed)" >&2; exit 1; }
command -v npm >/dev/null || { echo "npm-ci.sh: npm is not installed" >&2; exit 1; }
mkdir -p "$build"
exec 9>"$root/target/$name.lock"
flock 9
stamp="$build/.installed.sha256"
want="$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ] || [ ! -d "$build/node_modules" ]; then
  rm -rf "$build/node_modules" "$stamp"
  cp "$src/package.json" "$src/package-lock.json" "$build/"
  # --ignore-scripts: no install scripts run; playwright-core never
  # downloads a browser (the tests use Debian's chromium).
  (cd "$build" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) >&2
  echo "$want" >"$stamp"
fi
echo "$build"
