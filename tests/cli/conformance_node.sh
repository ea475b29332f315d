#!/usr/bin/env bash
# ONNX conformance: ../shared/onnx-tests/node, against tests/conformance/node.known.
set -u
dir="$EVO_SHARED/onnx-tests/node"
[ -d "$dir" ] || { echo "skip: $dir is absent"; exit 77; }
exec bash "$EVO_SRC/tests/conformance/run_suite.sh" node 998 "$dir"/*/
