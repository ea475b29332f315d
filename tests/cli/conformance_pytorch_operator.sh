#!/usr/bin/env bash
# ONNX conformance: ../shared/onnx-tests/pytorch-operator, against tests/conformance/pytorch-operator.known.
set -u
dir="$EVO_SHARED/onnx-tests/pytorch-operator"
[ -d "$dir" ] || { echo "skip: $dir is absent"; exit 77; }
exec bash "$EVO_SRC/tests/conformance/run_suite.sh" pytorch-operator 30 "$dir"/*/
