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
# Reuse an up-to-date build: compile only when a source, a tsconfig or the installed packages changed
# since the last build (dist/.tsbuildinfo), and then incrementally (tsc --incremental: only what the
# change touches is checked and written again).
if [[ ! -f dist/.tsbuildinfo ]] \
  || [[ -n "$(find crds model operator sidecar cli importer -name '*.ts' ! -name '*.test.ts' -newer dist/.tsbuildinfo -print -quit)" ]] \
  || [[ tsconfig.json -nt dist/.tsbuildinfo || tsconfig.build.json -nt dist/.tsbuildinfo || node_modules/.package-lock.json -nt dist/.tsbuildinfo ]]; then
  npm run build --silent # (which also marks dist/.tsbuildinfo as newer than the sources it compiled)
fi
# --no-health-checks: the example organisation's servers (*.contoso.com) are fictional; probing them
# would only send DNS look-ups and connections off this machine. Drop it for a real organisation.
exec node bin/cas-gateway.js standalone --manifests examples/contoso --directory examples/contoso/mailboxes.csv --site usa \
  --no-health-checks "$@"
