#!/usr/bin/env bash
# ONNX conformance: ../shared/onnx-tests/pytorch-converted, against tests/conformance/pytorch-converted.known.
set -u
dir="$EVO_SHARED/onnx-tests/pytorch-converted"
[ -d "$dir" ] || { echo "skip: $dir is absent"; exit 77; }
exec bash "$EVO_SRC/tests/conformance/run_suite.sh" pytorch-converted 82 "$dir"/*/
