#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, builds, type-checks, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm run build
npm run typecheck
mkdir -p .tmp
status=0
npx vitest run --reporter=default --reporter=json --outputFile=.tmp/vitest-results.json "$@" || status=$?
# One plain closing line that any CI reader can count.
node -e '
  const r = JSON.parse(require("fs").readFileSync(".tmp/vitest-results.json", "utf8"));
  console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' || true
exit "$status"
