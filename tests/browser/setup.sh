#!/usr/bin/env bash
# The browser environment of tests/browser/run.mjs: Debian's Chromium
# (apt, only if /usr/bin/chromium is missing) and playwright-core at the
# version of package-lock.json in target/browser/ (tests/npm-ci.sh).
# playwright-core never downloads a browser here: run.mjs launches
# /usr/bin/chromium. Prints the node_modules directory.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "$root/target"
if ! [ -x /usr/bin/chromium ]; then
  (
    exec 9>"$root/target/chromium-install.lock"
    flock 9
    if ! [ -x /usr/bin/chromium ]; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -q >&2
      apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >&2
    fi
  )
fi
echo "$(bash "$root/tests/npm-ci.sh" browser)/node_modules"
