#!/usr/bin/env bash
# The whole test suite on a fresh machine with only Node and npm: fetch the pinned pnpm through npx, install the
# workspace (Node 24 included), then lint, build, type-check, test and pack everything (`pnpm test`).
set -euo pipefail
cd "$(dirname "$0")/.."
pnpm_spec=$(node -p 'require("./package.json").packageManager')
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
npx --yes "$pnpm_spec" install
npx --yes "$pnpm_spec" test
