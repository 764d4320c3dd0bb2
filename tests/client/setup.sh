#!/usr/bin/env bash
# The Node environment of the generated-client check (tests/client/run.sh):
# openapi-typescript, openapi-fetch, typescript and @types/node at the exact
# versions of package-lock.json, in target/client/ (tests/npm-ci.sh).
# Prints the build directory.
set -euo pipefail
exec bash "$(dirname "$0")/../npm-ci.sh" client
