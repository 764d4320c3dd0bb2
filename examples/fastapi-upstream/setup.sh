#!/usr/bin/env bash
# The Python environment of examples/fastapi-upstream: a venv under
# target/ with requirements.txt installed. Used by Palisade's gateway
# integration tests (which start app.py with uvicorn) and by anyone
# trying the example.
# Safe to run from many processes at once (flock). Installs only when the
# venv is missing or broken or requirements.txt changed since the last
# install (a copy of it is kept in the venv). Prints the venv's python on
# stdout; everything else goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/target/fastapi-upstream-venv"
requirements="$here/requirements.txt"
installed="$venv/palisade-requirements.txt"
mkdir -p "$root/target"
exec 9>"$root/target/fastapi-upstream-venv.lock"
flock 9
if ! "$venv/bin/python" -c 'from fastapi import FastAPI; from uvicorn import run; from websockets import connect; from jwt import PyJWKClient; from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey' >/dev/null 2>&1; then
  rm -rf "$venv"
  "${PYTHON:-python3}" -m venv "$venv" >&2
fi
if ! cmp -s "$requirements" "$installed"; then
  rm -f "$installed"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
  # Recorded only after a complete install, so an interrupted one is
  # redone by the next run.
  cp "$requirements" "$installed"
fi
echo "$venv/bin/python"
