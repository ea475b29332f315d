#!/bin/bash
# evo place: plans on a zoo model, JSON shape, memory never exceeded, the
# explanatory error when nothing fits, bad inputs, and evo split --plan.
set -u
: "${EVO:?}" "${EVO_SRC:?}"
model="${EVO_SHARED:-}/models/squeezenet1_1/model.onnx"
if [ ! -f "$model" ]; then
    echo "skip: $model not found"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
dev="$EVO_SRC/examples/devices"

# auto on MCU + board + cloud: a plan, the table, a JSON file
"$EVO" place "$model" --devices "$dev/mcu-board-cloud.json" -o "$tmp/plan.json" > "$tmp/out.txt" ||
    fail "place auto failed: $(cat "$tmp/out.txt")"
grep -q "^standalone" "$tmp/out.txt" || fail "no standalone row"
grep -q "^cluster" "$tmp/out.txt" || fail "no cluster row"
grep -q "Chosen:" "$tmp/out.txt" || fail "no explanation"
python3 - "$tmp/plan.json" <<'PY' || fail "plan JSON check"
import json, sys
p = json.load(open(sys.argv[1]))
assert p["format"] == "evo-plan" and p["feasible"]
assert p["kind"] in ("standalone", "cloud", "cluster")
n = sum(len(s["node_indices"]) for s in p["stages"])
assert n == p["n_nodes"], (n, p["n_nodes"])
for d in p["totals"]["devices"]:
    assert d["used_bytes"] <= d["memory_bytes"], d
# the timeline adds up: transfers and stages back to back
t = sum(s["predicted_ms"] for s in p["stages"]) + sum(x["predicted_ms"] for x in p["transfers"])
assert abs(t - p["totals"]["latency_ms"]) < 1e-6 * t, (t, p["totals"]["latency_ms"])
for x in p["transfers"]:
    assert x["route"][0] == x["from"] and x["route"][-1] == x["to"]
assert len(p["alternatives"]) == 3 and "explanation" in p
PY

# every mode and both objectives
for mode in standalone cloud cluster; do
    for obj in latency throughput; do
        "$EVO" place "$model" --devices "$dev/mcu-board-cloud.json" --mode $mode \
            --objective $obj --json > "$tmp/m.json" || fail "mode $mode $obj"
        python3 -c "import json,sys; p=json.load(open('$tmp/m.json')); assert p['kind']=='$mode', p['kind']" ||
            fail "mode $mode gave another kind"
    done
done

# nothing fits: a 64 KiB device alone
cat > "$tmp/tiny.json" <<'J'
{"devices": [{"name": "mcu", "memory": "64K", "gflops": 0.1}], "source": "mcu", "sink": "mcu"}
J
"$EVO" place "$model" --devices "$tmp/tiny.json" > /dev/null 2> "$tmp/err.txt"
[ $? -eq 1 ] || fail "infeasible should exit 1"
grep -q "device 'mcu' lacks" "$tmp/err.txt" || fail "no shortfall named: $(cat "$tmp/err.txt")"

# bad inputs: usage errors exit 2, bad files exit 1 with the file named
"$EVO" place "$model" > /dev/null 2>&1; [ $? -eq 2 ] || fail "missing --devices"
"$EVO" place "$model" --devices "$dev/mcu-board-cloud.json" --mode bogus > /dev/null 2>&1
[ $? -eq 2 ] || fail "bad --mode"
echo '{"devices": [{"name": "a", "memory": "12Q", "gflops": 1}], "source": "a", "sink": "a"}' > "$tmp/bad.json"
"$EVO" place "$model" --devices "$tmp/bad.json" > /dev/null 2> "$tmp/err.txt"
[ $? -eq 1 ] && grep -q "bad.json" "$tmp/err.txt" || fail "bad size not reported"
echo '{"devices": [{"name": "a", "memory": "1G", "gflops": 1}], "links": [{"a": "a", "b": "zz", "mbps": 1}], "source": "a", "sink": "a"}' > "$tmp/bad2.json"
"$EVO" place "$model" --devices "$tmp/bad2.json" > /dev/null 2> "$tmp/err.txt"
[ $? -eq 1 ] && grep -q "unknown device 'zz'" "$tmp/err.txt" || fail "unknown link device"
echo 'not json' > "$tmp/bad3.json"
"$EVO" place "$model" --devices "$tmp/bad3.json" > /dev/null 2>&1; [ $? -eq 1 ] || fail "not json"

# the plan feeds evo split
"$EVO" split "$model" --plan "$tmp/plan.json" -o "$tmp/stages" > "$tmp/split.txt" ||
    fail "split --plan: $(cat "$tmp/split.txt")"
n=$(python3 -c "import json; print(len(json.load(open('$tmp/plan.json'))['stages']))")
[ "$(ls "$tmp/stages"/stage_*.onnx | wc -l)" -eq "$n" ] || fail "one model per stage"
other="${EVO_SHARED}/models/tiny_kws_dscnn/model.onnx"
if [ -f "$other" ]; then
    "$EVO" split "$other" --plan "$tmp/plan.json" -o "$tmp/x" > /dev/null 2> "$tmp/err.txt"
    [ $? -eq 1 ] && grep -q "plan" "$tmp/err.txt" || fail "plan of another model accepted"
fi

# SVG: the timeline always, the graph when Graphviz is there
"$EVO" place "$model" --devices "$dev/board-cloud-fast.json" --svg "$tmp/p.svg" > /dev/null ||
    fail "--svg"
[ -s "$tmp/p.timeline.svg" ] && [ -s "$tmp/p.svg.dot" ] || fail "timeline or dot missing"
if command -v dot > /dev/null; then
    grep -q "<svg" "$tmp/p.svg" || fail "graph svg"
fi
echo "place_cli: all checks passed"
