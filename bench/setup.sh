#!/usr/bin/env bash
# Install what the benchmarks need: Debian's python3-onnx/numpy, node, and
# ONNX Runtime for node into bench/node_modules. With --ignore-scripts the CPU
# build shipped inside the npm package is used and nothing else is downloaded.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/../scripts/install-deps.sh" --bench
if [ ! -d "$here/node_modules/onnxruntime-node" ]; then
  (cd "$here" && npm install --no-save --no-package-lock --ignore-scripts onnxruntime-node@1.20.1 >/dev/null)
fi
echo "$here/node_modules"
