#!/usr/bin/env bash
# Run a libFuzzer binary over its seed corpus, then mutate: ctest's fuzz step.
# New inputs go to a scratch directory so the checked-in corpus stays as is.
# Usage: run_fuzzer.sh FUZZER SEED_DIR SECONDS [RUNS]
#
# The mutation sequence is fixed (-seed, EVO_FUZZ_SEED, default 1) and bounded
# by RUNS executions, so a test run is reproducible: a failure in CI fails the
# same way here. SECONDS caps the time on a slow machine (a prefix of the same
# sequence). Open-ended searching with fresh seeds is scripts/fuzz-campaign.sh,
# whose findings become regression inputs in fuzz/corpus/<name>/.
set -euo pipefail
fuzzer=$1 seeds=$2 seconds=$3 runs=${4:-${EVO_FUZZ_RUNS:-300000}}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$work/artifacts"
[ -d "$seeds" ] || { echo "no seed corpus at $seeds"; exit 1; }
# -rss_limit_mb bounds memory so a huge allocation driven by the input is a
# finding, not a slow machine.
"$fuzzer" -seed="${EVO_FUZZ_SEED:-1}" -runs="$runs" -max_total_time="$seconds" \
  -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=20 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds" 2>&1 | tail -n 60
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
  for a in "$work"/artifacts/*; do
    [ -f "$a" ] || continue
    echo "reproducer ($(basename "$a")), base64:"
    base64 -w0 "$a"; echo
  done
fi
exit "$status"
