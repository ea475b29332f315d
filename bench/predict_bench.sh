#!/usr/bin/env bash
# Latency prediction, leave one model out: profile every model in
# ../shared/models on this machine, then predict each model from a fit on
# the other models' profiles and compare with its measured latency.
#
#   bench/predict_bench.sh [BUILD_DIR] [REPEATS]
#
# Prints a Markdown table (the one in docs/benchmarks.md) and the per-op
# shares. The database is kept in $EVO_BENCH_DB (default: a temporary file)
# so the profiles can be inspected with `evo model show`.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
repeats=${2:-41}
evo=$build/evo
models=${EVO_SHARED:-$src/../shared}/models
[ -x "$evo" ] || { echo "no $evo: build first" >&2; exit 1; }
[ -d "$models" ] || { echo "no $models: nothing to measure" >&2; exit 1; }

db=${EVO_BENCH_DB:-$(mktemp /tmp/evo_predict_bench.XXXXXX.db)}
echo "database: $db" >&2

"$evo" -q profile --calibrate --db "$db" >&2
for dir in "$models"/*/; do
    name=$(basename "$dir")
    [ -f "$dir/model.onnx" ] || continue
    echo "profiling $name ($repeats repeats)" >&2
    "$evo" -q profile "$dir/model.onnx" --db "$db" --warmup 5 --repeat "$repeats" --json \
        > /dev/null || echo "  $name: profile failed" >&2
done

"$evo" -q profile --validate --db "$db" --json | python3 -c '
import json, sys
v = json.load(sys.stdin)
c = v["calibration"]
print("device class: %s; calibration: dense %.1f GFLOP/s, depthwise %.1f GFLOP/s, "
      "elementwise %.2f GFLOP/s, memory %.1f GB/s, cache %.1f GB/s (%d KiB)" % (
      v["device_class"], c["dense_gflops"], c["dw_gflops"], c["elem_gflops"], c["mem_gbps"],
      c["cache_gbps"], c["cache_bytes"] // 1024))
print()
print("| model | ops | measured ms (sum of op medians) | predicted ms | error | end-to-end ms | error vs e2e | ops within 10% | ops within 25% |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
worst = 0
for m in v["models"]:
    worst = max(worst, abs(m["error"]))
    print("| %s | %d | %.4g | %.4g | %+.1f%% | %.4g | %+.1f%% | %.0f%% | %.0f%% |" % (
        m["name"], m["ops"], m["measured_us"] / 1e3, m["predicted_us"] / 1e3,
        100 * m["error"], m["e2e_us"] / 1e3, 100 * m["error_e2e"],
        100.0 * m["ops_within_10"] / m["ops"],
        100.0 * m["ops_within_25"] / m["ops"]))
print("| all ops | %d | | | | | | %.0f%% | %.0f%% |" % (
    v["ops"], 100.0 * v["ops_within_10"] / v["ops"], 100.0 * v["ops_within_25"] / v["ops"]))
print()
print("models within 15%%: %d of %d; worst whole-model error %.1f%%" % (
    v["models_within_15"], len(v["models"]), 100 * worst))
'
