#!/usr/bin/env bash
# Print docs/conformance.md's tables: per suite the PASS/FAIL/SKIP counts,
# and the skip reasons grouped (op, dtype, other). Regenerate the doc with:
#   scripts/conformance-report.sh > /tmp/c.md   (then paste the tables)
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
evo=${EVO:-$here/build/evo}
shared=${EVO_SHARED:-$here/../shared}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| suite | passed | failed | skipped |"
echo "|---|---|---|---|"
for s in node simple pytorch-converted pytorch-operator; do
  "$evo" check "$shared/onnx-tests/$s"/*/ > "$tmp/$s.txt" 2>&1
  sum=$(tail -1 "$tmp/$s.txt")
  echo "| onnx-tests/$s | $(echo "$sum" | awk '{print $1" | "$3" | "$5}') |"
done
"$evo" check "$shared/models"/*/ > "$tmp/models.txt" 2>&1
echo "| models (zoo) | $(tail -1 "$tmp/models.txt" | awk '{print $1" | "$3" | "$5}') |"
echo
echo "Skip reasons in onnx-tests/node (tests per reason):"
echo
echo "| tests | reason |"
echo "|---|---|"
grep '^SKIP' "$tmp/node.txt" | sed -E "s/^SKIP [^:]*: //; s|[^ ]*/model.onnx: ||; s/node '[^']*' //; s/(tensor|input|graph input) '[^']*'/\1/; s/'[^']*'//g" \
  | sed -E 's/uses op ([A-Za-z0-9_.]+), which evo does not support/op \1 not implemented/' \
  | sort | uniq -c | sort -rn | awk '{n=$1; $1=""; sub(/^ /,""); print "| " n " | " $0 " |"}'
