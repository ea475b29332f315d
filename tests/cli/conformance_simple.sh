#!/usr/bin/env bash
# ONNX conformance: ../shared/onnx-tests/simple, against tests/conformance/simple.known.
set -u
dir="$EVO_SHARED/onnx-tests/simple"
[ -d "$dir" ] || { echo "skip: $dir is absent"; exit 77; }
exec bash "$EVO_SRC/tests/conformance/run_suite.sh" simple 7 "$dir"/*/
