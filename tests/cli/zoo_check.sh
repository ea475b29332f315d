#!/usr/bin/env bash
# Every model in ../shared/models matches ONNX Runtime's reference outputs
# (rtol 1e-3, atol 1e-4) -- no known failures allowed.
set -u
dir="$EVO_SHARED/models"
[ -d "$dir" ] || { echo "skip: $dir is absent"; exit 77; }
n=$(ls -d "$dir"/*/ | wc -l)
exec bash "$EVO_SRC/tests/conformance/run_suite.sh" models "$n" "$dir"/*/
