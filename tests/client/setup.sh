#!/usr/bin/env bash
# The Node environment of the generated-client check (tests/client/run.sh):
# openapi-typescript, openapi-fetch, typescript and @types/node at the exact
# versions of package.json / package-lock.json, installed with `npm ci`
# into target/client-build/node_modules (never into the source tree).
# Idempotent: reinstalls only when the lock file changed or an install is
# missing or broken. Safe to run from many processes at once (flock).
# Prints the build directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$root/target/client-build"
mkdir -p "$build"
exec 9>"$root/target/client-build.lock"
flock 9
command -v node >/dev/null || { echo "setup.sh: node is not installed (Node >= 20 is needed)" >&2; exit 1; }
command -v npm >/dev/null || { echo "setup.sh: npm is not installed" >&2; exit 1; }
stamp="$build/.installed-lock.sha256"
want="$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ] \
  || [ ! -x "$build/node_modules/.bin/openapi-typescript" ] \
  || [ ! -x "$build/node_modules/.bin/tsc" ] \
  || [ ! -f "$build/node_modules/openapi-fetch/package.json" ] \
  || [ ! -f "$build/node_modules/@types/node/package.json" ]; then
  rm -rf "$build/node_modules" "$stamp"
  cp "$here/package.json" "$here/package-lock.json" "$build/"
  (cd "$build" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) >&2
  echo "$want" > "$stamp"
fi
echo "$build"
