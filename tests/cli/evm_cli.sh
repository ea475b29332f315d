#!/usr/bin/env bash
# evo compile and the .evm branch of run/check/inspect on examples/models/
# tiny_mlp: same outputs as the ONNX file (bitwise with --no-optimize; the
# optimized default fuses Relu into Gemm and passes check), inspect's facts (arena,
# weights, op histogram, a digest that is the SHA-256 of bytes [40, end)),
# --strip-names, a test dir holding model.evm, usage errors, and corrupted
# files (digest, truncation, version) failing with a clear message, never a
# crash.
set -u
: "${EVO:?EVO must name the evo binary}"
: "${EVO_SRC:?EVO_SRC must name the source tree}"
command -v python3 >/dev/null || { echo "skip: python3 is needed to read JSON"; exit 77; }
src=$(cd "$EVO_SRC/examples/models/tiny_mlp" && pwd) || exit 1
fail=0
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
bad() { echo "FAIL: $*"; fail=1; }
# run CMD...: status in $rc, output in $t/out and $t/err; a signal is a bug
run() {
  "$@" >"$t/out" 2>"$t/err"
  rc=$?
  [ "$rc" -lt 128 ] || bad "crashed ($rc): $*: $(cat "$t/err")"
}

run "$EVO" compile "$src/model.onnx" -o "$t/m.evm" --no-optimize
[ "$rc" -eq 0 ] || bad "compile exited $rc: $(cat "$t/err")"
grep -q "^wrote $t/m.evm: [0-9]* bytes" "$t/out" || bad "compile summary: $(cat "$t/out")"
grep -q "^optimized" "$t/out" && bad "--no-optimize still optimized: $(cat "$t/out")"
[ "$(head -c 4 "$t/m.evm")" = "EVOM" ] || bad "magic is not EVOM"

# the default runs the graph passes: Relu fused into the first Gemm
run "$EVO" compile "$src/model.onnx" -o "$t/o.evm"
[ "$rc" -eq 0 ] || bad "optimized compile exited $rc: $(cat "$t/err")"
grep -q "^optimized: 0 BatchNormalization folded, 1 activations fused" "$t/out" ||
  bad "optimized compile summary: $(cat "$t/out")"
run "$EVO" inspect "$t/o.evm" --json
python3 -c 'import json,sys; h=json.load(open(sys.argv[1]))["op_histogram"]; assert h == {"Gemm": 2, "Softmax": 1}, h' \
  "$t/out" || bad "optimized histogram: $(head -c 300 "$t/out")"
mkdir -p "$t/dir/o"
cp "$t/o.evm" "$t/dir/o/model.evm"
ln -s "$src/test_data_set_0" "$t/dir/o/test_data_set_0"
run "$EVO" check "$t/dir/o"
[ "$rc" -eq 0 ] && grep -qx "PASS o" "$t/out" || bad "check of the optimized .evm: $(cat "$t/out" "$t/err")"

# same outputs as the ONNX path, bitwise, on the reference input and on
# random input: m.evm against `run --no-optimize`, o.evm against `run`
for how in "--input $src/test_data_set_0/input_0.pb" "--seed 7"; do
  # shellcheck disable=SC2086
  run "$EVO" run "$src/model.onnx" $how --no-optimize --output-dir "$t/a"
  [ "$rc" -eq 0 ] || bad "run onnx ($how): $(cat "$t/err")"
  # shellcheck disable=SC2086
  run "$EVO" run "$t/m.evm" $how --output-dir "$t/b"
  [ "$rc" -eq 0 ] || bad "run evm ($how): $(cat "$t/err")"
  cmp -s "$t/a/output_0.pb" "$t/b/output_0.pb" || bad "outputs differ ($how)"
  # shellcheck disable=SC2086
  run "$EVO" run "$src/model.onnx" $how --output-dir "$t/a2"
  # shellcheck disable=SC2086
  run "$EVO" run "$t/o.evm" $how --output-dir "$t/b2"
  cmp -s "$t/a2/output_0.pb" "$t/b2/output_0.pb" || bad "optimized outputs differ ($how)"
done

# inspect: text and JSON facts
run "$EVO" inspect "$t/m.evm"
[ "$rc" -eq 0 ] || bad "inspect exited $rc: $(cat "$t/err")"
for want in '^format: +evo compact model \(.evm\) version 1' '^digest: +sha256 [0-9a-f]{64} \(verified\)' \
            '^arena: ' '^weights: +9\.4 KiB \(9640 bytes\)' '^  Gemm +2$' '^  Relu +1$' '^  Softmax +1$'; do
  grep -Eq "$want" "$t/out" || bad "inspect text lacks /$want/: $(cat "$t/out")"
done
run "$EVO" inspect "$t/m.evm" --json
[ "$rc" -eq 0 ] || bad "inspect --json exited $rc"
python3 - "$t/out" "$t/m.evm" <<'PY' || bad "inspect JSON"
import hashlib, json, os, sys
d = json.load(open(sys.argv[1])); blob = open(sys.argv[2], 'rb').read()
assert d['format'] == 'evm' and d['version'] == 1
assert d['file_bytes'] == len(blob) == os.path.getsize(sys.argv[2])
assert d['sha256'] == hashlib.sha256(blob[40:]).hexdigest() == blob[8:40].hex()
assert d['op_histogram'] == {'Gemm': 2, 'Relu': 1, 'Softmax': 1}, d['op_histogram']
t = d['totals']
assert t['weights_bytes'] == 9640 and t['nodes'] == 4
assert t['activation_lower_bound'] <= t['activation_bytes'] <= t['arena_bytes']
# 64x32 + 32x10 multiply-adds in the two Gemms
assert t['conv_gemm_matmul_flops'] == 2 * (64 * 32 + 32 * 10), t
assert d['inputs'][0]['name'] == 'x' and d['inputs'][0]['shape'] == [1, 64]
PY

# --strip-names: smaller, no names, same outputs
run "$EVO" compile "$src/model.onnx" -o "$t/s.evm" --strip-names --no-optimize
[ "$rc" -eq 0 ] || bad "compile --strip-names exited $rc"
[ "$(stat -c %s "$t/s.evm")" -lt "$(stat -c %s "$t/m.evm")" ] || bad "stripped file is not smaller"
run "$EVO" inspect "$t/s.evm"
grep -q "names stripped" "$t/out" || bad "inspect of stripped: $(cat "$t/out")"
grep -q "probs" "$t/out" && bad "stripped file still names 'probs'"
run "$EVO" run "$t/s.evm" --seed 7 --output-dir "$t/c"
[ "$rc" -eq 0 ] || bad "run stripped: $(cat "$t/err")"
python3 - "$t/b/output_0.pb" "$t/c/output_0.pb" <<'PY' || bad "stripped outputs differ"
import sys
a, b = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read()
# the .pb carries the output's name ('probs' vs ''); the float data must match
assert a[-40:] == b[-40:]
PY

# a test dir with model.evm instead of model.onnx
mkdir -p "$t/dir/x"
cp "$t/m.evm" "$t/dir/x/model.evm"
ln -s "$src/test_data_set_0" "$t/dir/x/test_data_set_0"
run "$EVO" check "$t/dir/x"
[ "$rc" -eq 0 ] && grep -qx "PASS x" "$t/out" || bad "check of model.evm dir: $(cat "$t/out" "$t/err")"

# usage errors
run "$EVO" compile "$src/model.onnx"
[ "$rc" -eq 2 ] && grep -q "no output file" "$t/err" || bad "compile without -o: $rc $(cat "$t/err")"
run "$EVO" compile -o "$t/x.evm"
[ "$rc" -eq 2 ] || bad "compile without a model: $rc"
run "$EVO" compile "$t/m.evm" -o "$t/x.evm"
[ "$rc" -eq 1 ] && grep -q "compiled already" "$t/err" || bad "compile of an .evm: $rc $(cat "$t/err")"
run "$EVO" run "$t/m.evm" --dim N=2
[ "$rc" -eq 1 ] && grep -q "does not apply" "$t/err" || bad "run .evm --dim: $rc $(cat "$t/err")"
run "$EVO" compile "$src/model.onnx" -o "$t/no/such/dir/x.evm"
[ "$rc" -eq 1 ] && grep -q "cannot create" "$t/err" || bad "compile to a bad path: $rc $(cat "$t/err")"

# corrupted files: a clear error, exit 1
size=$(stat -c %s "$t/m.evm")
corrupt() { # NAME PYTHON-EXPR-ON-b EXPECTED-MESSAGE
  python3 - "$t/m.evm" "$t/$1.evm" "$2" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
exec(sys.argv[3])
open(sys.argv[2], 'wb').write(b)
PY
  for cmd in run inspect; do
    run "$EVO" "$cmd" "$t/$1.evm"
    [ "$rc" -eq 1 ] && grep -q "$3" "$t/err" || bad "$cmd of $1: $rc $(cat "$t/err")"
  done
}
corrupt weight 'b[-5] ^= 1' "digest mismatch"
corrupt truncated 'del b[-1]' "truncated"
corrupt version 'b[4] = 2' "format version 2 is not supported"
corrupt header 'b[:] = b[:60]' "truncated"
mkdir -p "$t/dir/y"
cp "$t/weight.evm" "$t/dir/y/model.evm"
ln -s "$src/test_data_set_0" "$t/dir/y/test_data_set_0"
run "$EVO" check "$t/dir/y"
[ "$rc" -eq 1 ] && grep -q "^FAIL y.*digest mismatch" "$t/out" || bad "check of a corrupt .evm: $(cat "$t/out")"

[ "$fail" -eq 0 ] && echo "evm_cli: all good ($size-byte tiny_mlp.evm)"
exit "$fail"
