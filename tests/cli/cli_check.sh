#!/usr/bin/env bash
# evo check on copies of the bundled tiny_mlp with doctored reference data:
# a pass, a value outside the tolerance (the worst element is named), shape
# and dtype mismatches, an unsupported dtype (SKIP), several data sets with
# different batch sizes, a hanging directory (timeout) that does not stop
# the run, and the --json form.
set -u
: "${EVO:?EVO must name the evo binary}" "${EVO_SRC:?EVO_SRC must name the source tree}"
src="$EVO_SRC/examples/models/tiny_mlp"
[ -f "$src/model.onnx" ] || { echo "skip: $src is absent"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 is needed to write tensors"; exit 77; }
command -v mkfifo >/dev/null || { echo "skip: mkfifo is needed"; exit 77; }
fail=0
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
bad() { echo "FAIL: $*"; fail=1; }

# tp.py SRC.pb OUT.pb [--rows N] [--add INDEX DELTA] [--dims D,..] [--dtype N]:
# rewrite a float32 TensorProto (raw_data), doctoring it on the way
cat >"$t/tp.py" <<'PY'
import struct, sys
def varint(b, i):
    r = s = 0
    while True:
        c = b[i]; i += 1; r |= (c & 0x7f) << s; s += 7
        if c < 0x80: return r, i
def enc(v):
    out = b''
    while True:
        c = v & 0x7f; v >>= 7
        if v: out += bytes([c | 0x80])
        else: return out + bytes([c])
b = open(sys.argv[1], 'rb').read(); i = 0; dims = []; raw = b''; name = b''
while i < len(b):
    key, i = varint(b, i); f, w = key >> 3, key & 7
    if w == 0:
        v, i = varint(b, i)
        if f == 1: dims.append(v)
    elif w == 2:
        n, i = varint(b, i); v = b[i:i + n]; i += n
        if f == 9: raw = v
        elif f == 8: name = v
        elif f == 1:
            j = 0
            while j < len(v): d, j = varint(v, j); dims.append(d)
    elif w == 5: i += 4
    elif w == 1: i += 8
vals = list(struct.unpack('<%df' % (len(raw) // 4), raw)); dtype = 1
args = sys.argv[3:]
while args:
    a = args.pop(0)
    if a == '--rows': r = int(args.pop(0)); vals = vals * r; dims = [r] + dims[1:]
    elif a == '--add': k = int(args.pop(0)); vals[k] += float(args.pop(0))
    elif a == '--dims': dims = [int(x) for x in args.pop(0).split(',')]
    elif a == '--dtype': dtype = int(args.pop(0))
if dtype == 1: data = struct.pack('<%df' % len(vals), *vals)
elif dtype == 7: data = struct.pack('<%dq' % len(vals), *[int(v) for v in vals])
elif dtype == 11: data = struct.pack('<%dd' % len(vals), *vals)
out = b''.join(b'\x08' + enc(d) for d in dims) + b'\x10' + enc(dtype)
out += b'\x42' + enc(len(name)) + name + b'\x4a' + enc(len(data)) + data
open(sys.argv[2], 'wb').write(out)
PY
# case NAME [tp.py options for the expected output]: a copy of tiny_mlp
case_dir() {
  local d="$t/$1"; shift
  mkdir -p "$d/test_data_set_0"
  cp "$src/model.onnx" "$d/"
  cp "$src/test_data_set_0/input_0.pb" "$d/test_data_set_0/"
  python3 "$t/tp.py" "$src/test_data_set_0/output_0.pb" "$d/test_data_set_0/output_0.pb" "$@"
}
case_dir same
case_dir off --add 3 0.01
case_dir near --add 5 0.00005
case_dir shape --dims 1,5,2
case_dir dtype --dtype 7
case_dir f64 --dtype 11
case_dir sets
mkdir -p "$t/sets/test_data_set_1"
python3 "$t/tp.py" "$src/test_data_set_0/input_0.pb" "$t/sets/test_data_set_1/input_0.pb" --rows 3
python3 "$t/tp.py" "$src/test_data_set_0/output_0.pb" "$t/sets/test_data_set_1/output_0.pb" --rows 3 --add 17 1
mkdir -p "$t/hang/test_data_set_0"
cp "$t/same/test_data_set_0/"*.pb "$t/hang/test_data_set_0/"
mkfifo "$t/hang/model.onnx" # opening it blocks forever: a stand-in for a hang

run_check() { "$EVO" check "$@" >"$t/out" 2>"$t/err"; echo $? >"$t/rc"; }
line() { grep -qxF -- "$1" "$t/out" || bad "want line '$1' in: $(cat "$t/out" "$t/err")"; }

run_check "$t/same" "$t/near/"
[ "$(cat "$t/rc")" -eq 0 ] || bad "passing check exited $(cat "$t/rc")"
line "PASS same"
line "PASS near"
line "2 passed, 0 failed, 0 skipped"

run_check --timeout 2 "$t/off" "$t/shape" "$t/dtype" "$t/f64" "$t/sets" "$t/hang" "$t/same"
[ "$(cat "$t/rc")" -eq 1 ] || bad "failing check exited $(cat "$t/rc")"
grep -Eq "^FAIL off: output 0 index 3 got [0-9.e-]+ expected [0-9.e-]+ \(1 of 10 values differ\)$" "$t/out" ||
  bad "off: $(grep off "$t/out")"
line "FAIL shape: output 0: shape [1,10], expected [1,5,2]"
line "FAIL dtype: output 0: dtype float32, expected int64"
grep -Eq "^SKIP f64: .*output_0.pb: element type float64 is not supported by evo$" "$t/out" ||
  bad "f64: $(grep f64 "$t/out")"
grep -Eq "^FAIL sets: test_data_set_1 output 0 index 17 got .* \(1 of 30 values differ\)$" "$t/out" ||
  bad "sets: $(grep sets "$t/out")"
line "FAIL hang: timed out after 2 s"
line "PASS same"
line "1 passed, 5 failed, 1 skipped"
[ "$(tail -1 "$t/out")" = "1 passed, 5 failed, 1 skipped" ] || bad "summary is not the last line"

# tolerances: the 5e-5 change passes by default and fails with none
run_check --rtol 0 --atol 0 "$t/near"
[ "$(cat "$t/rc")" -eq 1 ] || bad "--rtol 0 --atol 0 did not fail"
grep -q "^FAIL near: output 0 index 5 " "$t/out" || bad "near strict: $(cat "$t/out")"
run_check --rtol 0 --atol 1e-4 "$t/near"
[ "$(cat "$t/rc")" -eq 0 ] || bad "--atol 1e-4 should pass: $(cat "$t/out")"

# --json: one object per directory, then the summary
run_check --json "$t/same" "$t/off" "$t/f64"
python3 - "$t/out" <<'PY' || bad "check --json: $(cat "$t/out")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r.get('status') for r in rows[:3]] == ['PASS', 'FAIL', 'SKIP'], rows
assert rows[0]['name'] == 'same' and rows[0]['data_sets'] == 1 and 'reason' not in rows[0]
assert rows[1]['reason'].startswith('output 0 index 3 got'), rows[1]
assert rows[3] == {'summary': True, 'passed': 1, 'failed': 1, 'skipped': 1}, rows[3]
PY

[ "$fail" -eq 0 ] && echo "cli_check: all good"
exit "$fail"
