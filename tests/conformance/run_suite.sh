#!/usr/bin/env bash
# Run `evo check` over one suite of ONNX-layout test directories and compare
# with the suite's list of known failures (tests/conformance/<suite>.known).
#
#   run_suite.sh SUITE_NAME MIN_PASSED DIR...
#
# Fails when a test fails that is not listed as known (a regression), when a
# listed test now passes (so the list stays true: remove it), or when fewer
# than MIN_PASSED pass. Each known failure carries its reason in the .known
# file and in docs/conformance.md.
set -uo pipefail
suite=$1 min_passed=$2
shift 2
: "${EVO:?EVO must name the evo binary}"
known_file="$(dirname "$0")/$suite.known"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$EVO" check --timeout 60 "$@" >"$out" 2>&1
rc=$?
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$out" | tail -1)
if [ -z "$summary" ]; then
  echo "evo check produced no summary line (exit $rc):"; tail -20 "$out"; exit 1
fi
echo "$suite: $summary"
passed=$(echo "$summary" | cut -d' ' -f1)
known=()
if [ -f "$known_file" ]; then
  mapfile -t known < <(grep -v '^#' "$known_file" | cut -d' ' -f1 | sed '/^$/d')
fi
is_known() { local t; for t in "${known[@]}"; do [ "$t" = "$1" ] && return 0; done; return 1; }
bad=0
while read -r status name rest; do
  name=$(basename "${name%:}")
  if [ "$status" = FAIL ] && ! is_known "$name"; then
    echo "new failure: $name $rest"; bad=1
  fi
  if [ "$status" = PASS ] && is_known "$name"; then
    echo "listed as known failure but passes now (remove it from $suite.known): $name"; bad=1
  fi
done < <(grep -E '^(PASS|FAIL) ' "$out")
grep -E '^SKIP ' "$out" | sed -E 's/^SKIP [^:]*: //' | sort | uniq -c | sort -rn | head -15 | sed 's/^/  skipped: /'
if [ "$passed" -lt "$min_passed" ]; then
  echo "only $passed passed; this suite must pass at least $min_passed"; bad=1
fi
exit $bad
