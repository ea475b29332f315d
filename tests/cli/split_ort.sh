#!/usr/bin/env bash
# Stages written by `evo split` are valid ONNX that ONNX Runtime runs: for
# every zoo model, 2-3 automatic cuts, each stage_K.onnx passes
# onnx.checker (full check) and runs in ONNX Runtime (onnxruntime-node via
# ../shared/tools/ort_run.js), stage after stage, and the model's outputs
# match its reference outputs. Also the whole model exported with
# --optimize. Skips (77) without node + onnxruntime-node or without
# /usr/bin/python3 with numpy and onnx.
set -u
: "${EVO:?EVO must name the evo binary}"
zoo="${EVO_SHARED:-}/models"
ort_js="${EVO_SHARED:-}/tools/ort_run.js"
[ -n "${EVO_SHARED:-}" ] && [ -d "$zoo/resnet18" ] || { echo "skip: ../shared/models is absent"; exit 77; }
[ -f "$ort_js" ] || { echo "skip: $ort_js is absent"; exit 77; }
py=/usr/bin/python3
$py -c 'import numpy, onnx' 2>/dev/null || { echo "skip: $py with numpy and onnx is needed"; exit 77; }
command -v node >/dev/null || { echo "skip: node is not installed"; exit 77; }
here=$(cd "$(dirname "$0")" && pwd)
src=${EVO_SRC:-$here/../..}
for p in "${NODE_PATH:-}" /tmp/ortnpm/node_modules "$src/bench/node_modules"; do
  [ -n "$p" ] && [ -d "$p/onnxruntime-node" ] && { export NODE_PATH=$p; break; }
done
node -e 'require("onnxruntime-node")' 2>/dev/null ||
  { echo "skip: onnxruntime-node not found (NODE_PATH, /tmp/ortnpm/node_modules or bench/node_modules after bench/setup.sh)"; exit 77; }
fail=0
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
bad() { echo "FAIL: $*"; fail=1; }

for dir in "$zoo"/*/; do
  m=$(basename "$dir")
  [ -f "$dir/model.onnx" ] && [ -f "$dir/test_data_set_0/output_0.pb" ] || continue
  n=3
  [ "$(stat -c %s "$dir/model.onnx")" -lt 500000 ] && n=2
  cuts=$($py "$here/split_tool.py" cuts "$dir/model.onnx" $n) || { bad "$m: no cuts"; continue; }
  "$EVO" split "$dir/model.onnx" --cut "$cuts" -o "$t/$m" >"$t/log" 2>&1 ||
    { bad "split $m: $(cat "$t/log")"; continue; }
  if $py "$here/split_tool.py" ort "$t/$m" "$dir" "$ort_js" >"$t/res" 2>&1; then
    echo "$m: $(cat "$t/res")"
  else
    bad "$m: $(cat "$t/res")"
  fi
  # the optimized whole model, exported, as one stage
  mkdir -p "$t/$m-opt"
  "$EVO" export "$dir/model.onnx" -o "$t/$m-opt/stage_0.onnx" --optimize >/dev/null 2>"$t/log" ||
    { bad "export $m: $(cat "$t/log")"; continue; }
  $py - "$t/$m" "$t/$m-opt/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1] + '/manifest.json'))
one = dict(m, stages=[dict(index=0, file='stage_0.onnx', inputs=m['model_inputs'],
                           outputs=m['model_outputs'])], tensors=[])
json.dump(one, open(sys.argv[2], 'w'))
PY
  $py "$here/split_tool.py" ort "$t/$m-opt" "$dir" "$ort_js" >"$t/res" 2>&1 ||
    bad "$m exported with --optimize: $(cat "$t/res")"
done

[ "$fail" -eq 0 ] && echo "split_ort: all good"
exit "$fail"
