#!/usr/bin/env bash
# ONNX conformance: ../shared/onnx-tests/light, against tests/conformance/light.known.
set -u
dir="$EVO_SHARED/onnx-tests/light"
[ -d "$dir" ] || { echo "skip: $dir is absent"; exit 77; }
exec bash "$EVO_SRC/tests/conformance/run_suite.sh" light 0 "$dir"/*/
