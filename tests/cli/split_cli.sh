#!/usr/bin/env bash
# evo split on every zoo model: 2-3 cuts chosen automatically at block
# boundaries (split_tool.py cuts); the stages run one after another with
# `evo run`, each fed the previous stage's output, and the last stage's
# output passes `evo check` against the model's reference output -- once with
# the stage_K.onnx files and once with the compiled stage_K.evm blobs. The
# manifest describes every stage. Cut errors name the tensor at fault.
set -u
: "${EVO:?EVO must name the evo binary}"
zoo="${EVO_SHARED:-}/models"
[ -n "${EVO_SHARED:-}" ] && [ -d "$zoo/resnet18" ] || { echo "skip: ../shared/models is absent"; exit 77; }
py=/usr/bin/python3
$py -c 'import numpy, onnx' 2>/dev/null || { echo "skip: $py with numpy and onnx is needed"; exit 77; }
here=$(cd "$(dirname "$0")" && pwd)
fail=0
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
bad() { echo "FAIL: $*"; fail=1; }

for dir in "$zoo"/*/; do
  m=$(basename "$dir")
  [ -f "$dir/model.onnx" ] && [ -f "$dir/test_data_set_0/input_0.pb" ] || continue
  n=3
  [ "$(stat -c %s "$dir/model.onnx")" -lt 500000 ] && n=2
  cuts=$($py "$here/split_tool.py" cuts "$dir/model.onnx" $n) || { bad "$m: no cuts"; continue; }
  out=$t/$m
  "$EVO" split "$dir/model.onnx" --cut "$cuts" -o "$out" >"$t/log" 2>&1 ||
    { bad "split $m exited $?: $(cat "$t/log")"; continue; }
  stages=$(ls "$out"/stage_*.onnx | wc -l)
  [ "$stages" -eq $((n + 1)) ] || bad "$m: $stages stage files for $n cuts"
  $py - "$out/manifest.json" "$cuts" <<'PY' || bad "$m: manifest"
import json, sys
m = json.load(open(sys.argv[1])); cuts = sys.argv[2].split(',')
st = m['stages']
assert len(st) == len(cuts) + 1
assert st[0]['inputs'][0]['name'] == m['model_inputs'][0]['name']
for k, c in enumerate(cuts):
    assert [o['name'] for o in st[k]['outputs']] == [c], (k, st[k]['outputs'])
    assert [i['name'] for i in st[k + 1]['inputs']] == [c]
    o = st[k]['outputs'][0]
    n = 1
    for d in o['shape']:
        n *= d
    assert o['dtype'] == 'float32' and o['bytes'] == 4 * n, o
assert [o['name'] for o in st[-1]['outputs']] == [o['name'] for o in m['model_outputs']]
flows = [f['name'] for f in m['tensors']]
assert flows == cuts, flows
assert all(f['to'] == [f['from'] + 1] for f in m['tensors'])
assert all(s['nodes'] > 0 and s['flops'] > 0 for s in st)
PY
  # run the chain in evo
  in=$dir/test_data_set_0/input_0.pb
  last=$((n))
  for k in $(seq 0 $((last - 1))); do
    "$EVO" run "$out/stage_$k.onnx" --input "$in" --output-dir "$out/o$k" >"$t/log" 2>&1 ||
      { bad "$m stage $k: $(cat "$t/log")"; continue 2; }
    in=$out/o$k/output_0.pb
  done
  mkdir -p "$out/last/test_data_set_0"
  cp "$out/stage_$last.onnx" "$out/last/model.onnx"
  cp "$in" "$out/last/test_data_set_0/input_0.pb"
  cp "$dir/test_data_set_0/output_0.pb" "$out/last/test_data_set_0/output_0.pb"
  "$EVO" check "$out/last" >"$t/check" 2>&1 || bad "$m: chained stages differ: $(cat "$t/check")"
  echo "$m: $((n + 1)) stages chained in evo: $(head -1 "$t/check")"
  # the same chain through the compiled stage_K.evm blobs a node receives
  [ "$(ls "$out"/stage_*.evm | wc -l)" -eq $((n + 1)) ] || bad "$m: missing stage_K.evm files"
  in=$dir/test_data_set_0/input_0.pb
  for k in $(seq 0 $((last - 1))); do
    "$EVO" run "$out/stage_$k.evm" --input "$in" --output-dir "$out/e$k" >"$t/log" 2>&1 ||
      { bad "$m stage_$k.evm: $(cat "$t/log")"; continue 2; }
    in=$out/e$k/output_0.pb
  done
  mkdir -p "$out/lastevm/test_data_set_0"
  cp "$out/stage_$last.evm" "$out/lastevm/model.evm"
  cp "$in" "$out/lastevm/test_data_set_0/input_0.pb"
  cp "$dir/test_data_set_0/output_0.pb" "$out/lastevm/test_data_set_0/output_0.pb"
  "$EVO" check "$out/lastevm" >"$t/check" 2>&1 || bad "$m: chained .evm stages differ: $(cat "$t/check")"
  echo "$m: $((n + 1)) .evm stages chained: $(head -1 "$t/check")"
done

# --optimize: the residual blocks' outputs (after the Relu fused into each
# Add) stay cuts; the pre-activation sum is fused away
r8="$zoo/tiny_ic_resnet8/model.onnx"
"$EVO" split "$r8" --cut /Relu_output_0,/Relu_1_output_0 -o "$t/opt" --optimize >"$t/log" 2>&1 ||
  bad "split --optimize: $(cat "$t/log")"
"$EVO" split "$r8" --cut /Add_output_0 -o "$t/e0" --optimize >/dev/null 2>"$t/err"; rc=$?
[ "$rc" -eq 1 ] && grep -q "'/Add_output_0' was removed by --optimize" "$t/err" ||
  bad "fused Add cut: rc $rc $(cat "$t/err")"
[ -f "$t/opt/stage_2.onnx" ] && [ -f "$t/opt/manifest.json" ] || bad "split --optimize wrote no stage_2.onnx"

# errors: each names the tensor at fault
"$EVO" split "$r8" --cut nope -o "$t/e1" >/dev/null 2>"$t/err"; rc=$?
[ "$rc" -eq 1 ] && grep -q "cut tensor 'nope' is not in the model" "$t/err" || bad "unknown cut: rc $rc $(cat "$t/err")"
# inside a residual block the skip tensor is live too
"$EVO" split "$r8" --cut /a/a.0/Conv_output_0 -o "$t/e2" >/dev/null 2>"$t/err"; rc=$?
[ "$rc" -eq 1 ] && grep -q "cut '/a/a.0/Conv_output_0' does not separate the graph: tensor '/stem/stem.2/Relu_output_0'" "$t/err" ||
  bad "non-separating cut: rc $rc $(cat "$t/err")"
"$EVO" split "$r8" --cut input -o "$t/e3" >/dev/null 2>"$t/err"; rc=$?
[ "$rc" -eq 1 ] && grep -q "'input' is a graph input" "$t/err" || bad "input as cut: rc $rc $(cat "$t/err")"
"$EVO" split "$r8" --cut output -o "$t/e4" >/dev/null 2>"$t/err"; rc=$?
[ "$rc" -eq 1 ] && grep -q "nothing to compute after it" "$t/err" || bad "output as cut: rc $rc $(cat "$t/err")"
"$EVO" split "$r8" --cut /stem/stem.0/Conv_output_0 -o "$t/e5" --optimize >/dev/null 2>"$t/err"; rc=$?
[ "$rc" -eq 1 ] && grep -q "removed by --optimize" "$t/err" || bad "fused cut: rc $rc $(cat "$t/err")"
"$EVO" split "$r8" -o "$t/e6" >/dev/null 2>"$t/err"; rc=$?
[ "$rc" -eq 2 ] && grep -q "no cut given" "$t/err" || bad "no cut: rc $rc $(cat "$t/err")"
"$EVO" split "$r8" --cut /Add_output_0 >/dev/null 2>"$t/err"; rc=$?
[ "$rc" -eq 2 ] && grep -q "no output directory" "$t/err" || bad "no -o: rc $rc $(cat "$t/err")"
"$EVO" split "$r8" --cut /Add_output_0, -o "$t/e7" >/dev/null 2>"$t/err"; rc=$?
[ "$rc" -eq 2 ] && grep -q "empty tensor name" "$t/err" || bad "empty cut name: rc $rc $(cat "$t/err")"
"$EVO" split "$r8" --cut /Add_output_0 -o /proc/nonexistent/x >/dev/null 2>"$t/err"; rc=$?
[ "$rc" -eq 1 ] && grep -q "/proc/nonexistent/x" "$t/err" || bad "bad dir: rc $rc $(cat "$t/err")"
"$EVO" help split | grep -q "^usage: evo split" || bad "help split"

[ "$fail" -eq 0 ] && echo "split_cli: all good"
exit "$fail"
