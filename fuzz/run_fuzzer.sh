#!/usr/bin/env bash
# Run a libFuzzer binary over its seed corpus, then mutate for a bounded time.
# New inputs go to a scratch directory so the checked-in corpus stays as is.
# Usage: run_fuzzer.sh FUZZER SEED_DIR SECONDS
set -euo pipefail
fuzzer=$1 seeds=$2 seconds=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$work/artifacts"
[ -d "$seeds" ] || { echo "no seed corpus at $seeds"; exit 1; }
# -rss_limit_mb bounds memory so a huge allocation driven by the input is a
# finding, not a slow machine.
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
  -timeout=20 -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds"
