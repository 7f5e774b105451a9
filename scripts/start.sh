#!/usr/bin/env bash
# Runs the gateway on the embedded default: the example organisation in examples/contoso.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi
npm run build --silent
exec node bin/cas-gateway.js validate --manifests examples/contoso --directory examples/contoso/mailboxes.csv "$@"
