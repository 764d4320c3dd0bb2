#!/usr/bin/env bash
# The Python environment of the tests: a venv under target/, made once,
# with aiosmtpd (the SMTP server of tests/smtp/server.py), pyotp (a second
# TOTP implementation) and passlib with bcrypt and argon2-cffi (the hashes
# of an application Palisade imports users from), and PyJWT with
# cryptography (an independent verifier of EdDSA/ES256 tokens from the
# JWKS alone), and Authlib with requests (an OAuth2 client library
# someone else wrote, tests/api/oauth2_clients.rs).
# Safe to run from many test processes at once (flock). Prints the
# venv's python.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/target/test-venv"
mkdir -p "$root/target"
exec 9>"$root/target/test-venv.lock"
flock 9
if ! "$venv/bin/python" -c 'import aiosmtpd, pyotp, passlib, bcrypt, argon2, jwt, cryptography, authlib, requests' >/dev/null 2>&1; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'aiosmtpd==1.4.6' 'pyotp==2.9.0' 'passlib==1.7.4' 'bcrypt==4.0.1' 'argon2-cffi==23.1.0' 'PyJWT==2.10.1' 'cryptography==44.0.2' 'Authlib==1.5.2' 'requests==2.32.3' >&2
fi
echo "$venv/bin/python"
