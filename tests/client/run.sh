#!/usr/bin/env bash
# Proves that a client GENERATED from Palisade's OpenAPI document works:
#   1. openapi-typescript turns BASE_URL/openapi.json into schema.d.ts,
#   2. tsc (strict, see tsconfig.json) type-checks client.ts against it,
#      including the generated file itself (skipLibCheck is off),
#   3. node runs the compiled client against BASE_URL: register -> login
#      (password grant) -> profile -> refresh -> profile -> logout -> 401.
# Everything is built in a fresh folder under target/client/ (the
# packages come from setup.sh, pinned by package-lock.json). Exits non-zero
# if any of the three fails; the folder of a failed run is kept.
#
# Usage: tests/client/run.sh http://127.0.0.1:8000
# The flow makes two token requests (password, then refresh grant), and both
# count in POST /auth/token's default limit of 5 a minute per IP (a burst of
# 5, then one every 12 s): against one server, run it about twice a minute
# at most, or the client fails with a 429.
set -euo pipefail
if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 BASE_URL" >&2
  exit 2
fi
base="${1%/}"
here="$(cd "$(dirname "$0")" && pwd)"
build="$(bash "$here/setup.sh")"
bin="$build/node_modules/.bin"
work="$(mktemp -d "$build/run.XXXXXX")"
ok=0
finish() {
  if [ "$ok" = 1 ]; then rm -rf "$work"; else echo "run.sh: FAILED; its files are in $work" >&2; fi
}
trap finish EXIT
cp "$here/client.ts" "$here/tsconfig.json" "$work/"
now() { date +%s%N; }
ms() { echo $(( ($(now) - $1) / 1000000 )); }

t=$(now)
"$bin/openapi-typescript" "$base/openapi.json" --output "$work/schema.d.ts" >"$work/generate.log" 2>&1 \
  || { cat "$work/generate.log" >&2; echo "run.sh: openapi-typescript failed" >&2; exit 1; }
[ -s "$work/schema.d.ts" ] || { echo "run.sh: openapi-typescript wrote no schema.d.ts" >&2; exit 1; }
# Redocly's lint warnings (if any) are worth seeing; the banner lines are not.
grep -viE 'openapi-typescript [0-9]|→' "$work/generate.log" >&2 || true
echo "generate: schema.d.ts from $base/openapi.json ($(wc -l <"$work/schema.d.ts") lines, $(ms "$t") ms)"

tsc_version="$("$bin/tsc" --version | cut -d' ' -f2)"
t=$(now)
"$bin/tsc" -p "$work/tsconfig.json" || { echo "run.sh: tsc failed" >&2; exit 1; }
echo "compile: tsc $tsc_version strict, client.ts + schema.d.ts ($(ms "$t") ms)"

t=$(now)
node "$work/out/client.js" "$base" || { echo "run.sh: the client failed" >&2; exit 1; }
echo "run: node $(node --version) ($(ms "$t") ms)"
ok=1
