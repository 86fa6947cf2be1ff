#!/usr/bin/env bash
# The main job on a fresh machine with only Node and npm: install the workspace (as scripts/test.sh does), then run
# the tap demo — embedded ws, SSE, NDJSON and file sources (plus Postgres and Redis when reachable at PG_URL /
# REDIS_URL), merged as readable lines on stdout, lifecycle and stats on stderr, for 10 seconds (`pnpm start`).
set -euo pipefail
cd "$(dirname "$0")/.."
pnpm_spec=$(node -p 'require("./package.json").packageManager')
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
npx --yes "$pnpm_spec" install --frozen-lockfile
npx --yes "$pnpm_spec" start -- "$@"
