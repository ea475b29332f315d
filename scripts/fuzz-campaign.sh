#!/usr/bin/env bash
# Search for new crashes with every libFuzzer target: fresh random seeds, all
# cores (-fork), SECONDS each (default 600). The ctest fuzz step replays a
# fixed sequence; this is where new bugs are found. Findings are kept in
# build-asan/fuzz-findings/<name>/ with one line per distinct crash site.
# A fixed bug's reproducer belongs in fuzz/corpus/<name>/ (regress_*).
# Usage: scripts/fuzz-campaign.sh [SECONDS] [NAME...]   (after `make asan`)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in fuzz/*_fuzz.c; do names+=("$(basename "$f" _fuzz.c)"); done
fi
jobs=$(nproc 2>/dev/null || echo 2)
for name in "${names[@]}"; do
  bin=build-asan/fuzz/${name}_fuzz
  [ -x "$bin" ] || { echo "no $bin: run make asan first" >&2; exit 1; }
  out=build-asan/fuzz-findings/$name
  mkdir -p "$out/corpus" "$out/artifacts"
  echo "== $name: ${seconds}s on $jobs cores"
  "$bin" -fork="$jobs" -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
    -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
    -artifact_prefix="$out/artifacts/" "$out/corpus" "fuzz/corpus/$name" >"$out/log" 2>&1 || true
  # One line per distinct crash site (first evo frame or sanitizer message).
  for a in "$out"/artifacts/*; do
    [ -f "$a" ] || continue
    report=$(timeout 60 "$bin" -timeout=5 -runs=1 "$a" 2>&1 || true)
    kind=$(grep -m1 -oE "runtime error: [a-z -]*|AddressSanitizer: [a-z-]*|LeakSanitizer|libFuzzer: [a-z-]*" <<<"$report" || true)
    site=$(grep -E "#[0-9]+ .* in .*/(core|node|modeldb|transport|partitioner|coordinator)/" <<<"$report" \
      | head -1 | grep -oE "[a-z_]+/[^ ]*:[0-9]+" || true)
    echo "$kind | $site | $a"
  done | sort -t'|' -k1,2 -u
done
