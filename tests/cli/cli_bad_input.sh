#!/usr/bin/env bash
# Bad input to evo inspect/run/check: missing, garbage and truncated files,
# wrong input shapes and dtypes, tensors that are not tensors. Each must give
# a non-zero exit below 128 (no crash) and one clear line on stderr.
# Uses the bundled examples/models/tiny_mlp (input x: float32 [batch,64]).
set -u
: "${EVO:?EVO must name the evo binary}" "${EVO_SRC:?EVO_SRC must name the source tree}"
mdir="$EVO_SRC/examples/models/tiny_mlp"
model="$mdir/model.onnx"
ref_in="$mdir/test_data_set_0/input_0.pb"
[ -f "$model" ] || { echo "skip: $model is absent"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 is needed to write test tensors"; exit 77; }
fail=0
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
bad() { echo "FAIL: $*"; fail=1; }

# npy PATH DESCR SHAPE [FORTRAN]: a .npy of zeros
npy() {
  python3 - "$@" <<'PY'
import struct, sys
path, descr, shape = sys.argv[1], sys.argv[2], eval(sys.argv[3])
fortran = len(sys.argv) > 4
n = 1
for d in shape:
    n *= d
size = {'<f4': 4, '<i8': 8, '<f8': 8, '|u1': 1}[descr]
hdr = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, repr(tuple(shape)))
hdr += ' ' * (63 - (10 + len(hdr)) % 64) + '\n'
with open(path, 'wb') as f:
    f.write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(hdr)) + hdr.encode() + bytes(n * size))
PY
}

# expect_error REGEX CMD...: exit in 1..127, exactly one stderr line matching REGEX
expect_error() {
  local want=$1; shift
  "$EVO" "$@" >"$t/out" 2>"$t/err"
  local rc=$?
  if [ "$rc" -eq 0 ] || [ "$rc" -ge 128 ]; then
    bad "evo $* exited $rc"; return
  fi
  [ "$(wc -l <"$t/err")" -eq 1 ] || bad "evo $*: want one stderr line, got: $(cat "$t/err")"
  grep -Eq "$want" "$t/err" || bad "evo $*: stderr lacks /$want/: $(cat "$t/err")"
}

python3 -c "
import random; r = random.Random(7)
open('$t/garbage.onnx', 'wb').write(bytes(r.randrange(256) for _ in range(4096)))"
head -c 3000 "$model" >"$t/truncated.onnx"
: >"$t/empty.onnx"

for cmd in inspect run; do
  expect_error "$t/missing.onnx" $cmd "$t/missing.onnx"
  expect_error "garbage.onnx" $cmd "$t/garbage.onnx"
  expect_error "truncated.onnx" $cmd "$t/truncated.onnx"
  expect_error "empty.onnx" $cmd "$t/empty.onnx"
  expect_error "$t" $cmd "$t"
done

# inputs that do not fit the model
npy "$t/shape.npy" '<f4' '(1, 63)'
expect_error "input 0 'x' has shape \[1,63\] in .*shape.npy but the model expects \[batch,64\]" \
  run "$model" --input "$t/shape.npy"
npy "$t/rank.npy" '<f4' '(64,)'
expect_error "input 0 'x' has shape \[64\]" run "$model" --input "$t/rank.npy"
npy "$t/dtype.npy" '<i8' '(1, 64)'
expect_error "input 0 'x' is int64 in .*dtype.npy but the model expects float32" \
  run "$model" --input "$t/dtype.npy"
npy "$t/f8.npy" '<f8' '(1, 64)'
expect_error "f8.npy: .npy dtype '<f8' is not supported" run "$model" --input "$t/f8.npy"
npy "$t/fortran.npy" '<f4' '(2, 64)' fortran
expect_error "fortran.npy: .npy array is in Fortran order" run "$model" --input "$t/fortran.npy"
npy "$t/two.npy" '<f4' '(2, 64)'
expect_error "dim 'batch' is 2 from .*two.npy but 1 from an earlier input or --dim" \
  run "$model" --dim batch=1 --input "$t/two.npy"
expect_error "the model has 1 input but 2 were given" \
  run "$model" --input "$ref_in" --input "$ref_in"
# a file that is not a tensor: the model itself, garbage, a truncated tensor
expect_error "model.onnx: .*(not a serialized onnx.TensorProto|no data_type)" run "$model" --input "$model"
expect_error "garbage.onnx: .*onnx.TensorProto" run "$model" --input "$t/garbage.onnx"
head -c 100 "$ref_in" >"$t/cut.pb"
expect_error "cut.pb: " run "$model" --input "$t/cut.pb"
expect_error "missing.pb: cannot open" run "$model" --input "$t/missing.pb"
# an output directory that cannot be made
: >"$t/file"
expect_error "file: cannot create the output directory" \
  run "$model" --input "$ref_in" --output-dir "$t/file"

# check turns broken directories into FAIL lines, never a crash
mkdir -p "$t/nomodel" "$t/badmodel/test_data_set_0" "$t/nodata"
cp "$t/truncated.onnx" "$t/badmodel/model.onnx"
cp "$ref_in" "$t/badmodel/test_data_set_0/input_0.pb"
cp "$model" "$t/nodata/model.onnx"
"$EVO" check "$t/nomodel" "$t/badmodel" "$t/nodata" "$t/missing" >"$t/out" 2>"$t/err"
rc=$?
[ "$rc" -eq 1 ] || bad "check of broken dirs exited $rc, want 1"
grep -q "^FAIL nomodel: no model.onnx" "$t/out" || bad "check nomodel: $(cat "$t/out")"
grep -q "^FAIL badmodel: .*truncated\|^FAIL badmodel: .*model.onnx" "$t/out" || bad "check badmodel: $(cat "$t/out")"
grep -q "^FAIL nodata: no test_data_set_0" "$t/out" || bad "check nodata: $(cat "$t/out")"
grep -q "^FAIL missing: " "$t/out" || bad "check missing: $(cat "$t/out")"
tail -1 "$t/out" | grep -qx "0 passed, 4 failed, 0 skipped" || bad "check summary: $(tail -1 "$t/out")"

[ "$fail" -eq 0 ] && echo "cli_bad_input: all good"
exit "$fail"
