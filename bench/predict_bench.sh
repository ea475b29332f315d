#!/usr/bin/env bash
# Latency prediction, leave one model out: profile every model in
# ../shared/models on this machine, then predict each model from a fit on
# the other models' profiles and compare with its measured latency.
#
#   bench/predict_bench.sh [BUILD_DIR] [REPEATS] [RUNS]
#
# Prints a Markdown table per run (the one in docs/benchmarks.md) and, with
# RUNS > 1, a summary of every model's error over the runs: on a shared
# machine the spread between runs (calibration and profiles measured again)
# is the noise the figures carry. Each run calibrates first, then profiles
# every model (REPEATS timed runs after 5 warm-ups; per-op medians). The
# databases are kept in $EVO_BENCH_DB (default: temporary files; with RUNS
# > 1, one file per run with the run number appended) so the profiles can
# be inspected with `evo model show` / `evo profile MODEL --predict`.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
repeats=${2:-61}
runs=${3:-1}
evo=$build/evo
models=${EVO_SHARED:-$src/../shared}/models
[ -x "$evo" ] || { echo "no $evo: build first" >&2; exit 1; }
[ -d "$models" ] || { echo "no $models: nothing to measure" >&2; exit 1; }
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "RUNS must be a positive integer" >&2; exit 1; }

jsons=$(mktemp -d /tmp/evo_predict_bench.XXXXXX)
trap 'rm -rf "$jsons"' EXIT

for run in $(seq 1 "$runs"); do
    if [ -n "${EVO_BENCH_DB:-}" ]; then
        db=$EVO_BENCH_DB
        [ "$runs" -gt 1 ] && db=$EVO_BENCH_DB.$run
        rm -f "$db" "$db-wal" "$db-shm"
    else
        db=$(mktemp /tmp/evo_predict_bench.XXXXXX.db)
    fi
    echo "run $run: database $db ($(uptime | sed 's/.*load average/load average/'))" >&2
    "$evo" -q profile --calibrate --db "$db" >&2
    for dir in "$models"/*/; do
        name=$(basename "$dir")
        [ -f "$dir/model.onnx" ] || continue
        echo "  profiling $name ($repeats repeats)" >&2
        "$evo" -q profile "$dir/model.onnx" --db "$db" --warmup 5 --repeat "$repeats" --json \
            > /dev/null || echo "  $name: profile failed" >&2
    done
    "$evo" -q profile --validate --db "$db" --json > "$jsons/$run.json"
done

python3 - "$jsons" "$runs" <<'PY'
import json, os, sys
d, runs = sys.argv[1], int(sys.argv[2])
all_runs = []
for run in range(1, runs + 1):
    v = json.load(open(os.path.join(d, "%d.json" % run)))
    all_runs.append(v)
    c = v["calibration"]
    if runs > 1:
        print("### run %d" % run)
        print()
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
    print()
if runs > 1:
    print("### over %d runs" % runs)
    print()
    print("| model | measured ms (min .. max) | error (min .. max) | runs within 15% |")
    print("|---|---:|---:|---:|")
    names = [m["name"] for m in all_runs[0]["models"]]
    for name in names:
        ms = [m for v in all_runs for m in v["models"] if m["name"] == name]
        err = [100 * m["error"] for m in ms]
        meas = [m["measured_us"] / 1e3 for m in ms]
        print("| %s | %.4g .. %.4g | %+.1f%% .. %+.1f%% | %d of %d |" % (
            name, min(meas), max(meas), min(err), max(err),
            sum(abs(e) <= 15 for e in err), len(ms)))
    ok = sum(v["models_within_15"] == len(v["models"]) for v in all_runs)
    mem = [v["calibration"]["mem_gbps"] for v in all_runs]
    print()
    print("runs with every model within 15%%: %d of %d; memory bandwidth calibrated "
          "%.1f .. %.1f GB/s" % (ok, runs, min(mem), max(mem)))
PY
