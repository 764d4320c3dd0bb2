#!/usr/bin/env bash
# Schemathesis (PyPI) against a running Palisade's /openapi.json, bounded:
# every documented operation, property-based inputs from the document
# (coverage and fuzzing phases, N examples per operation, fixed seed), with
# these checks on every response:
#   not_a_server_error            no 5xx
#   response_schema_conformance   the body matches the documented schema
#   status_code_conformance       the status is documented
#   content_type_conformance      the media type is documented
#   response_headers_conformance  documented required headers are present
#   negative_data_rejection       data the document rules out gets a 4xx
#
# Usage: tests/schemathesis/run.sh BASE_URL BEARER_TOKEN [EXAMPLES]
#
# Left out, each for a reason:
#   POST /auth/logout, DELETE /account, POST /auth/revoke, DELETE /sessions
#   (GET /sessions is run),
#   DELETE /sessions/{session_id}, POST /mfa/totp, DELETE /mfa/totp: they would end
#   or change the session of the token the run authenticates with, and
#   every later request would test only the 401 path. Their refusals and
#   successes are tested in tests/api/.
#   The stateful phase: it chains operations through links the document
#   does not declare yet.
# The venv (target/schemathesis-venv, pinned version) comes from setup.sh.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 BASE_URL BEARER_TOKEN [EXAMPLES]" >&2
  exit 2
fi
base="${1%/}"
token="$2"
examples="${3:-25}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
st="$(bash "$root/tests/schemathesis/setup.sh")"
# Hypothesis keeps its example database here (not in the source tree).
cd "$root/target"
exec "$st" run "$base/openapi.json" \
  -H "Authorization: Bearer $token" \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,response_headers_conformance,negative_data_rejection \
  --max-examples "$examples" --seed 20261205 \
  --phases examples,coverage,fuzzing \
  --exclude-path /auth/logout --exclude-path /account --exclude-path /auth/revoke \
  --exclude-name 'DELETE /sessions' --exclude-path '/sessions/{session_id}' --exclude-path /mfa/totp \
  --request-timeout 10 --continue-on-failure --no-color
