#!/usr/bin/env bash
# `evo model` and `evo profile` on a temporary database with the bundled
# tiny_mlp: add/list/show/rm, idempotence, versions, JSON, profiling,
# prediction and validation, and bad input (usage errors, corrupt files).
# No timing assertions: only structure and exit codes.
set -uo pipefail
EVO=${EVO:?EVO must name the evo binary}
SRC=${EVO_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
MLP=$SRC/examples/models/tiny_mlp/model.onnx
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
db=$tmp/m.db
fails=0

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# expect CODE CMD...: run, check the exit code, keep stdout/stderr
expect() {
    local want=$1
    shift
    "$@" > "$tmp/out" 2> "$tmp/err"
    local got=$?
    [ "$got" -eq "$want" ] || fail "'$*' exited $got, expected $want: $(head -c 300 "$tmp/err")"
    [ "$got" -lt 128 ] || fail "'$*' crashed with status $got"
}
has() { grep -q -- "$1" "$tmp/out" || fail "stdout of the last command lacks '$1'"; }
err_has() { grep -q -- "$1" "$tmp/err" || fail "stderr of the last command lacks '$1'"; }
one_err_line() { [ "$(wc -l < "$tmp/err")" -eq 1 ] || fail "expected one stderr line, got: $(cat "$tmp/err")"; }

# a second file: the same graph with a doc_string appended (ModelProto field 6)
cp "$MLP" "$tmp/mlp2.onnx"
printf '\x32\x03abc' >> "$tmp/mlp2.onnx"

# ---- model add / list / show / rm
expect 0 "$EVO" model add "$MLP" --db "$db"
has "added tiny_mlp version 1: 3 ops"
expect 0 "$EVO" model add "$MLP" --db "$db"
has "unchanged: tiny_mlp version 1"
expect 0 "$EVO" model add "$tmp/mlp2.onnx" --name tiny_mlp --db "$db"
has "added tiny_mlp version 2"
expect 0 "$EVO" model add "$MLP" --name mlp4 --dim batch=4 --db "$db" --json
python3 - "$tmp/out" <<'EOF' || fail "model add --json"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["name"] == "mlp4" and m["version"] == 1 and m["existed"] is False, m
assert m["inputs"] == [{"name": "x", "dtype": "float32", "shape": [4, 64]}], m["inputs"]
assert m["import_options"] == {"dims": {"batch": 4}}
assert m["flops"] == 4 * (4096 + 640 + 40) and m["n_ops"] == 3
assert len(m["sha256"]) == 64
EOF
expect 0 "$EVO" model list --db "$db"
has "mlp4"
[ "$(grep -c '^tiny_mlp ' "$tmp/out")" -eq 2 ] || fail "list should show two tiny_mlp versions"
expect 0 "$EVO" model list --db "$db" --json
python3 -c 'import json,sys; l=json.load(open(sys.argv[1])); assert [(m["name"],m["version"]) for m in l]==[("mlp4",1),("tiny_mlp",1),("tiny_mlp",2)], l' "$tmp/out" \
    || fail "model list --json"
expect 0 "$EVO" model show tiny_mlp --db "$db"
has "tiny_mlp version 2"
has "Gemm"
has "Softmax"
expect 0 "$EVO" model show tiny_mlp --version 1 --db "$db" --json
python3 - "$tmp/out" <<'EOF' || fail "model show --json"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["version"] == 1 and len(m["ops"]) == 3, m  # Relu fused into the first Gemm
assert [o["op"] for o in m["ops"]] == ["Gemm", "Gemm", "Softmax"]
assert [o["kind"] for o in m["ops"]] == ["gemm", "gemm", "reduce"]
assert m["ops"][0]["flops"] == 4096 and m["ops"][0]["param_bytes"] == 4 * (2048 + 32)
assert m["ops"][0]["in_shapes"] == [[1, 64], [32, 64], [32]]
assert m["profiles"] == []
EOF

# ---- profile: calibrates the class on first use, stores, reports
expect 0 "$EVO" profile tiny_mlp --db "$db" --device-class testbox --repeat 5 --warmup 1
has "device class: testbox"
has "top 3 ops by time"
has "total:"
expect 0 "$EVO" profile mlp4 --db "$db" --device-class testbox --repeat 5 --json
python3 - "$tmp/out" <<'EOF' || fail "profile --json"
import json, sys
p = json.load(open(sys.argv[1]))
assert p["model"] == "mlp4" and p["device_class"] == "testbox" and p["repeats"] == 5
assert len(p["ops"]) == 3 and len(p["top"]) == 3
assert abs(sum(o["median_us"] for o in p["ops"]) - p["op_sum_us"]) <= 1e-6 * (p["op_sum_us"] + 1)
assert all(o["min_us"] <= o["median_us"] for o in p["ops"])
assert "predicted_us" in p  # fitted on the other model's profile
EOF
expect 0 "$EVO" profile tiny_mlp --db "$db" --device-class testbox --repeat 3 --stage 1:3
has "stage 1:3"
expect 0 "$EVO" model show tiny_mlp --db "$db"
has "profile:    testbox"
expect 0 "$EVO" profile tiny_mlp --predict --db "$db" --device-class testbox
has "predicted:"
has "measured:"
expect 0 "$EVO" profile --validate --db "$db" --device-class testbox --json
python3 - "$tmp/out" <<'EOF' || fail "profile --validate --json"
import json, sys
v = json.load(open(sys.argv[1]))
assert {m["name"] for m in v["models"]} == {"tiny_mlp", "mlp4"}, v
assert v["ops"] == 6 and 0 <= v["ops_within_25"] <= 6
EOF
expect 0 "$EVO" profile --validate --db "$db" --device-class testbox
has "models within 15% of measured"

# ---- removal
expect 0 "$EVO" model rm tiny_mlp --version 1 --db "$db"
has "removed tiny_mlp version 1"
expect 0 "$EVO" model rm tiny_mlp --db "$db"
has "removed tiny_mlp (1 version)"
expect 1 "$EVO" model show tiny_mlp --db "$db"
one_err_line
err_has "no model named 'tiny_mlp'"

# ---- errors
expect 2 "$EVO" model --db "$db"
expect 2 "$EVO" model frob --db "$db"
expect 2 "$EVO" model add "$MLP"
err_has "no database given"
expect 2 "$EVO" model list --db "$db" --version 0
expect 2 "$EVO" model show --db "$db"
expect 2 "$EVO" profile --db "$db"
expect 2 "$EVO" profile x --db "$db" --stage 3:1
expect 1 "$EVO" model add "$tmp/missing.onnx" --db "$db"
one_err_line
expect 1 "$EVO" profile nosuchmodel --db "$db" --device-class testbox
one_err_line
expect 1 "$EVO" profile mlp4 --predict --db "$db" --device-class uncalibrated
err_has "has no calibration"
head -c 5000 /dev/urandom > "$tmp/junk.db"
expect 1 "$EVO" model list --db "$tmp/junk.db"
one_err_line
err_has "not a usable evo model database"
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("create table t(x)"); c.commit()' "$tmp/foreign.db"
expect 1 "$EVO" model list --db "$tmp/foreign.db"
err_has "not made by evo"

if [ "$fails" -gt 0 ]; then
    echo "$fails failure(s)"
    exit 1
fi
echo "modeldb_cli: all passed"
