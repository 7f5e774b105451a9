#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, builds, type-checks, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm run build
npm run typecheck
npx vitest run "$@"
