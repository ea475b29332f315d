#!/usr/bin/env bash
# The main job, as far as evo has come: import a real model from the zoo,
# show what evo sees in it, run it, and check its outputs against ONNX
# Runtime's reference data. (The coordinator issue turns this into
# cooperative inference across a coordinator and several nodes.)
#
#   scripts/demo.sh [path/to/evo]
set -euo pipefail
evo=${1:-build/evo}
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${EVO_SHARED:-$here/../shared}
model=${EVO_DEMO_MODEL:-tiny_vww_mbv1}
if [ -d "$shared/models/$model" ]; then
  dir="$shared/models/$model"
else
  dir="$here/examples/models/tiny_mlp"
  model=tiny_mlp
  echo "evo demo: ../shared is absent; using the bundled $dir"
fi

echo "== evo inspect $model"
"$evo" inspect "$dir/model.onnx" | sed -n "1,30p"
echo
echo "== evo run $model (reference input, 20 repeats)"
"$evo" run "$dir/model.onnx" --input "$dir/test_data_set_0/input_0.pb" --repeat 20
echo
echo "== evo check $model (outputs against ONNX Runtime's reference)"
"$evo" check "$dir"
