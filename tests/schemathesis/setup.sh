#!/usr/bin/env bash
# Schemathesis (PyPI, pinned) in a venv under target/, made once. Safe to
# run from many processes at once (flock). Prints the `st` program.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/target/schemathesis-venv"
version=4.32.5
mkdir -p "$root/target"
exec 9>"$root/target/schemathesis-venv.lock"
flock 9
if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$version"; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version" >&2
fi
echo "$venv/bin/st"
