#!/usr/bin/env bash
# Runs the gateway on the embedded default: the example organisation in examples/contoso, as
# `cas-gateway standalone` (control plane + ADS server + sidecar + mail proxy in one process on
# loopback; Envoy too when an envoy binary is on PATH). Foreground; Ctrl-C to stop. Extra arguments
# are passed on (e.g. npm start -- --envoy off --xds-port 18001).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi
npm run build --silent
# --no-health-checks: the example organisation's servers (*.contoso.com) are fictional; probing them
# would only send DNS look-ups and connections off this machine. Drop it for a real organisation.
exec node bin/cas-gateway.js standalone --manifests examples/contoso --directory examples/contoso/mailboxes.csv --site usa \
  --no-health-checks "$@"
