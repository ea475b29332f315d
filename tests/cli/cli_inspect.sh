#!/usr/bin/env bash
# evo inspect on the bundled tiny_mlp (Gemm 64->32, Relu, Gemm 32->10,
# Softmax; x: float32 [batch,64]), where every figure is known by hand:
# 2410 parameters (9640 bytes), 64*32 + 32*10 = 2368 Gemm multiply-adds.
set -u
: "${EVO:?EVO must name the evo binary}" "${EVO_SRC:?EVO_SRC must name the source tree}"
model="$EVO_SRC/examples/models/tiny_mlp/model.onnx"
[ -f "$model" ] || { echo "skip: $model is absent"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 is needed to read JSON"; exit 77; }
fail=0
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
bad() { echo "FAIL: $*"; fail=1; }

"$EVO" inspect "$model" --dim batch=4 --json >"$t/json" 2>"$t/err" || bad "inspect --json exited $?"
[ "$(wc -l <"$t/json")" -eq 1 ] || bad "inspect --json is not one line"
python3 - "$t/json" <<'PY' || bad "inspect --json content"
import json, sys
d = json.load(open(sys.argv[1]))
tot = d['totals']
assert d['format'] == 'onnx' and d['ir_version'] == 7 and d['producer'] == 'evo-examples', d
assert d['opsets'] == [{'domain': '', 'version': 13}], d['opsets']
assert d['inputs'] == [{'name': 'x', 'dtype': 'float32', 'shape': [4, 64],
                        'dim_params': ['batch', None]}], d['inputs']
assert d['outputs'] == [{'name': 'probs', 'dtype': 'float32', 'shape': [4, 10]}], d['outputs']
assert tot['nodes'] == 4 and tot['param_count'] == 2410 and tot['param_bytes'] == 9640, tot
macs = 4 * (64 * 32 + 32 * 10)          # batch 4
assert abs(tot['conv_gemm_matmul_macs'] - macs) <= 0.02 * macs, tot
assert tot['conv_gemm_matmul_flops'] == 2 * tot['conv_gemm_matmul_macs'], tot
assert tot['flops'] >= tot['conv_gemm_matmul_flops'], tot
assert d['op_histogram'] == {'Gemm': 2, 'Relu': 1, 'Softmax': 1}, d['op_histogram']
assert d['unsupported_ops'] == {}, d['unsupported_ops']
nodes = d['nodes']
assert [n['op'] for n in nodes] == ['Gemm', 'Relu', 'Gemm', 'Softmax'], nodes
assert nodes[0]['name'] == 'fc1' and nodes[0]['outputs'][0]['shape'] == [4, 32], nodes[0]
assert nodes[0]['param_bytes'] == (64 * 32 + 32) * 4, nodes[0]
assert nodes[0]['out_bytes'] == 4 * 32 * 4, nodes[0]
assert all(n['supported'] and n['flops'] is not None for n in nodes), nodes
PY

"$EVO" inspect "$model" >"$t/text" 2>"$t/err" || bad "inspect exited $?"
for want in '^model: ' '^format: +ONNX, ir_version 7, opset ai.onnx 13' '^producer: +evo-examples' \
    '^  x +float32 +\[batch=1,64\]' '^  probs +float32 +\[1,10\]' '^nodes: +4' \
    '^parameters: +2410 values, 9.4 KiB \(9640 bytes\)' '^Conv/Gemm/MatMul: .*2368 multiply-adds|^Conv/Gemm/MatMul: .*0.0 M' \
    '^  Gemm +2' '^unsupported ops: none' '^ +0 +Gemm +\[1,32\] .* fc1$'; do
  grep -Eq "$want" "$t/text" || bad "text output lacks /$want/"
done
[ -s "$t/err" ] && bad "inspect wrote to stderr: $(cat "$t/err")"

[ "$fail" -eq 0 ] && echo "cli_inspect: all good"
exit "$fail"
