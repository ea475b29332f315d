#!/usr/bin/env bash
# The network-namespace testbed, short: one link setting (board 10 Mbit/s at
# 20% of a core, cloud 50 Mbit/s at one core), 5 requests per configuration.
# scripts/testbed.sh checks every output against ONNX Runtime's reference
# (--expect) and fails on a mismatch. Here we also check that each of the
# four configurations produced a row with a measured median, that the plan
# evo chose (auto) is not slower than running everything on the board by more
# than the noise, and that nothing the script made is left behind.
# Skips (77) unless root with ip netns, tc, cgroup v1 cpu and ../shared.
set -uo pipefail
: "${EVO:?EVO must name the evo binary}"
src=${EVO_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
[ "$(id -u)" = 0 ] || { echo "testbed: skipped: needs root"; exit 77; }
[ -f "${EVO_SHARED:-$src/../shared}/models/tiny_vww_mbv1/model.onnx" ] \
  || { echo "testbed: skipped: ../shared is absent"; exit 77; }
# Count namespaces from other runs first, so only ours must be gone.
before=$(ip netns list | grep -c '^evo-tb-' || true)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
EVO_SHARED=${EVO_SHARED:-$src/../shared} EVO_TB_STEP_LIMIT=40 \
  timeout -k 20 100 bash "$src/scripts/testbed.sh" --quick "$EVO" > "$out" 2>&1
rc=$?
cat "$out"
[ "$rc" = 77 ] && exit 77
[ "$rc" = 0 ] || { echo "FAIL: scripts/testbed.sh exited $rc"; exit 1; }
grep -q "every output matched the reference" "$out" || { echo "FAIL: no reference check"; exit 1; }
# The final table: one row per configuration after the header.
table=$(sed -n '/^MBIT\/S/,/^$/p' "$out")
for c in "evo plan" "cloud split" "best single" "all on board"; do
  grep -q "^10/50 *$c " <<< "$table" || { echo "FAIL: no row for '$c'"; exit 1; }
done
med() { grep "^10/50 *$1 " <<< "$table" | awk '{ print $(NF-3) }'; }
auto=$(med "evo plan")
board=$(med "all on board")
# On this setting the whole input crosses the 10 Mbit/s link when all runs on
# the board (~90 ms) and the 50 Mbit/s link when on the cloud (~18 ms):
# evo's plan must not be the slower one.
awk -v a="$auto" -v b="$board" 'BEGIN { exit !(a > 0 && b > 0 && a < b) }' \
  || { echo "FAIL: evo's plan ($auto ms) is not faster than all on the board ($board ms)"; exit 1; }
leftover=$(ip netns list | grep -c '^evo-tb-' || true)
[ "$leftover" -le "$before" ] || { echo "FAIL: $leftover testbed namespace(s) left behind"; ip netns list; exit 1; }
echo "testbed: all checks passed"
