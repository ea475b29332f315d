#!/usr/bin/env bash
# evo run: outputs written as TensorProto match the reference, symbolic dims
# bind from the input's shape, random inputs are seeded, --json has its keys.
# Uses the bundled examples/models/tiny_mlp (x: float32 [batch,64] ->
# probs: float32 [batch,10], a softmax) and, when ../shared is present, a zoo
# model.
set -u
: "${EVO:?EVO must name the evo binary}" "${EVO_SRC:?EVO_SRC must name the source tree}"
mdir="$EVO_SRC/examples/models/tiny_mlp"
[ -f "$mdir/model.onnx" ] || { echo "skip: $mdir is absent"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 is needed to read tensors"; exit 77; }
fail=0
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
bad() { echo "FAIL: $*"; fail=1; }

# A reader of the TensorProto fields evo writes and the ONNX test data uses,
# independent of evo's own reader.
cat >"$t/tp.py" <<'PY'
import json, struct, sys

def varint(b, i):
    r = s = 0
    while True:
        c = b[i]; i += 1; r |= (c & 0x7f) << s; s += 7
        if c < 0x80:
            return r, i

def read(path):
    b = open(path, 'rb').read()
    i, dims, dt, name, raw, floats = 0, [], 0, '', None, []
    while i < len(b):
        key, i = varint(b, i)
        f, w = key >> 3, key & 7
        if w == 0:
            v, i = varint(b, i)
            if f == 1: dims.append(v)
            elif f == 2: dt = v
        elif w == 2:
            n, i = varint(b, i); v = b[i:i + n]; i += n
            if f == 1:
                j = 0
                while j < len(v):
                    d, j = varint(v, j); dims.append(d)
            elif f == 8: name = v.decode()
            elif f == 9: raw = v
            elif f == 4: floats += struct.unpack('<%df' % (len(v) // 4), v)
        elif w == 5:
            v = b[i:i + 4]; i += 4
            if f == 4: floats += struct.unpack('<f', v)
        elif w == 1:
            i += 8
    assert dt == 1, 'float32 only'
    vals = list(struct.unpack('<%df' % (len(raw) // 4), raw)) if raw is not None else floats
    return name, dims, vals

cmd = sys.argv[1]
if cmd == 'info':                       # name dims
    name, dims, vals = read(sys.argv[2])
    print(name, json.dumps(dims).replace(' ', ''))
elif cmd == 'close':                    # GOT WANT: |a-b| <= 1e-4 + 1e-3|b|
    _, d1, a = read(sys.argv[2]); _, d2, b = read(sys.argv[3])
    assert d1 == d2, (d1, d2)
    bad = [(x, y) for x, y in zip(a, b) if abs(x - y) > 1e-4 + 1e-3 * abs(y)]
    assert len(a) == len(b) and not bad, bad[:3]
elif cmd == 'tile':                     # PB ROWS OUT.npy: rows copies of PB's data
    _, dims, v = read(sys.argv[2]); rows = int(sys.argv[3])
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (rows, len(v))
    hdr += ' ' * (63 - (10 + len(hdr)) % 64) + '\n'
    with open(sys.argv[4], 'wb') as f:
        f.write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(hdr)) + hdr.encode())
        f.write(struct.pack('<%df' % len(v), *v) * rows)
elif cmd == 'rows_equal':               # GOT WANT: every row of GOT equals WANT's data
    _, dims, a = read(sys.argv[2]); _, _, b = read(sys.argv[3])
    n = len(b)
    for r in range(len(a) // n):
        row = a[r * n:(r + 1) * n]
        assert all(abs(x - y) <= 1e-4 + 1e-3 * abs(y) for x, y in zip(row, b)), (r, row, b)
elif cmd == 'softmax_rows':             # PB COLS: every row sums to 1
    _, dims, a = read(sys.argv[2]); n = int(sys.argv[3])
    for r in range(len(a) // n):
        assert abs(sum(a[r * n:(r + 1) * n]) - 1) < 1e-5, (r, sum(a[r * n:(r + 1) * n]))
PY
tp() { python3 "$t/tp.py" "$@"; }

# 1. reference input -> output_0.pb equals ONNX Runtime's reference output
ref="$mdir/test_data_set_0"
"$EVO" run "$mdir/model.onnx" --input "$ref/input_0.pb" --output-dir "$t/out" >"$t/log" 2>&1 ||
  bad "run with the reference input exited $?: $(cat "$t/log")"
if [ -f "$t/out/output_0.pb" ]; then
  [ "$(tp info "$t/out/output_0.pb")" = "probs [1,10]" ] ||
    bad "output_0.pb is $(tp info "$t/out/output_0.pb"), want probs [1,10]"
  tp close "$t/out/output_0.pb" "$ref/output_0.pb" || bad "output_0.pb differs from the reference"
else
  bad "no output_0.pb written"
fi
grep -q "^output 0: probs float32 \[1,10\]:" "$t/log" || bad "text output lacks the output line"
grep -q "^time: .*min .* ms, median .* ms" "$t/log" || bad "text output lacks timings"
grep -q "^memory: .*arena .*lower bound" "$t/log" || bad "text output lacks memory"

# 2. a .npy of 3 copies of the reference row binds batch=3; each output row
#    must equal the reference output row
tp tile "$ref/input_0.pb" 3 "$t/x3.npy"
"$EVO" run "$mdir/model.onnx" --input "$t/x3.npy" --output-dir "$t/out3" >"$t/log" 2>&1 ||
  bad "run with a [3,64] .npy exited $?: $(cat "$t/log")"
[ "$(tp info "$t/out3/output_0.pb" 2>/dev/null)" = "probs [3,10]" ] || bad "batch 3 output shape"
tp rows_equal "$t/out3/output_0.pb" "$ref/output_0.pb" || bad "batch 3 rows differ from the reference"

# 3. random inputs: --dim sets the batch, softmax rows sum to 1, the seed
#    decides the data
"$EVO" run "$mdir/model.onnx" --dim batch=5 --seed 7 --output-dir "$t/r1" >/dev/null 2>&1 ||
  bad "random run exited $?"
"$EVO" run "$mdir/model.onnx" --dim batch=5 --seed 7 --output-dir "$t/r2" >/dev/null 2>&1
"$EVO" run "$mdir/model.onnx" --dim batch=5 --seed 8 --output-dir "$t/r3" >/dev/null 2>&1
[ "$(tp info "$t/r1/output_0.pb" 2>/dev/null)" = "probs [5,10]" ] || bad "--dim batch=5 output shape"
tp softmax_rows "$t/r1/output_0.pb" 10 || bad "softmax rows do not sum to 1"
cmp -s "$t/r1/output_0.pb" "$t/r2/output_0.pb" || bad "same seed, different outputs"
cmp -s "$t/r1/output_0.pb" "$t/r3/output_0.pb" && bad "different seeds, same outputs"

# 4. --json: one line with the documented keys
"$EVO" run "$mdir/model.onnx" --repeat 3 --json >"$t/json" 2>"$t/err" || bad "run --json exited $?"
[ "$(wc -l <"$t/json")" -eq 1 ] || bad "run --json printed $(wc -l <"$t/json") lines"
python3 - "$t/json" <<'PY' || bad "run --json content"
import json, sys
d = json.load(open(sys.argv[1]))
for k in ('ms_min', 'ms_median', 'arena_bytes', 'arena_lower_bound', 'weights_bytes', 'outputs'):
    assert k in d, k
assert d['runs'] == 3 and 0 <= d['ms_min'] <= d['ms_median']
assert d['arena_bytes'] >= d['activation_bytes'] >= d['arena_lower_bound'] > 0
assert d['weights_bytes'] == (64 * 32 + 32 + 32 * 10 + 10) * 4, d['weights_bytes']
assert d['outputs'] == [{'name': 'probs', 'dtype': 'float32', 'shape': [1, 10]}], d['outputs']
assert d['inputs'] == [{'name': 'x', 'dtype': 'float32', 'shape': [1, 64]}], d['inputs']
PY

# 5. a zoo model against ONNX Runtime's reference
if [ -n "${EVO_SHARED:-}" ] && [ -d "$EVO_SHARED/models/tiny_kws_dscnn" ]; then
  z="$EVO_SHARED/models/tiny_kws_dscnn"
  if "$EVO" run "$z/model.onnx" --input "$z/test_data_set_0/input_0.pb" --output-dir "$t/z" \
      >"$t/log" 2>&1; then
    tp close "$t/z/output_0.pb" "$z/test_data_set_0/output_0.pb" || bad "tiny_kws_dscnn output differs"
  else
    bad "tiny_kws_dscnn run exited $?: $(cat "$t/log")"
  fi
else
  echo "note: ../shared is absent; zoo part skipped"
fi

[ "$fail" -eq 0 ] && echo "cli_run: all good"
exit "$fail"
