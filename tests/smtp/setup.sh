#!/usr/bin/env bash
# The Python environment of the SMTP server the tests start
# (tests/smtp/server.py): a venv under target/ with aiosmtpd, made once.
# Safe to run from many test processes at once (flock). Prints the
# venv's python.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/target/test-venv"
mkdir -p "$root/target"
exec 9>"$root/target/test-venv.lock"
flock 9
if ! "$venv/bin/python" -c 'import aiosmtpd, pyotp' >/dev/null 2>&1; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'aiosmtpd==1.4.6' 'pyotp==2.9.0' >&2
fi
echo "$venv/bin/python"
