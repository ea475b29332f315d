#!/bin/bash
# Placement benchmark: prints the Markdown tables recorded in
# docs/benchmarks.md. usage: bench/place_bench.sh [BUILD_DIR]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
cmake --build "$build" --target evo_place_bench -j2 >/dev/null
exec "$build/bench/evo_place_bench" "$src/../shared/models" "$src/examples/devices"
