#!/usr/bin/env bash
# The browser environment of tests/browser/run.mjs: Debian's Chromium
# (apt, only if /usr/bin/chromium is missing) and playwright-core from npm,
# installed with `npm ci` from the committed package-lock.json into
# target/browser/ (so nothing lands in the source tree). playwright-core
# never downloads a browser here: run.mjs launches /usr/bin/chromium.
# Safe to run from many test processes at once (flock); does nothing when
# everything is already in place. Prints the node_modules directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
prefix="$root/target/browser"
mkdir -p "$prefix"
exec 9>"$root/target/browser.lock"
flock 9

if ! [ -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >&2
fi

# Reinstall when the lock file changed or the package is missing.
stamp="$prefix/.lock-sha256"
want="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
if ! [ -f "$prefix/node_modules/playwright-core/package.json" ] \
   || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$prefix/"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$prefix" \
    --ignore-scripts --no-audit --no-fund --loglevel=error >&2
  echo "$want" >"$stamp"
fi
echo "$prefix/node_modules"
