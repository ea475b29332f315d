#!/usr/bin/env bash
# `evo run` and `evo check` apply the graph passes by default; --no-optimize
# runs the graph as imported. Both must give the reference outputs, and the
# passes must change what runs (the fused graph has fewer nodes).
set -u
: "${EVO:?EVO must name the evo binary}"
src=${EVO_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
fail=0
bad() { echo "FAIL: $*"; fail=1; }
dirs=("$src/examples/models/tiny_mlp")
[ -n "${EVO_SHARED:-}" ] && [ -d "$EVO_SHARED/models/tiny_vww_mbv1" ] &&
  dirs+=("$EVO_SHARED/models/tiny_vww_mbv1" "$EVO_SHARED/models/tiny_ad_autoencoder")
for d in "${dirs[@]}"; do
  "$EVO" check "$d" >/dev/null 2>&1 || bad "check (optimized) $d"
  "$EVO" check --no-optimize "$d" >/dev/null 2>&1 || bad "check --no-optimize $d"
done
# tiny_mlp: Gemm, Relu, Gemm, Softmax; the Relu fuses into the first Gemm.
m=$src/examples/models/tiny_mlp/model.onnx
n_opt=$("$EVO" run "$m" --verbose 2>&1 | sed -n 's/.*: \([0-9]*\) nodes,.*/\1/p' | head -1)
n_raw=$("$EVO" run "$m" --no-optimize --verbose 2>&1 | sed -n 's/.*: \([0-9]*\) nodes,.*/\1/p' | head -1)
[ "$n_opt" = 3 ] && [ "$n_raw" = 4 ] || bad "expected 3 nodes optimized and 4 without, got '$n_opt' and '$n_raw'"
# a flag is not a value
"$EVO" run "$m" --no-optimize=1 >/dev/null 2>&1
[ $? -eq 2 ] || bad "--no-optimize=1 should be a usage error (exit 2)"
[ "$fail" -eq 0 ] && echo "cli_optimize: passes on by default, --no-optimize runs the imported graph"
exit $fail
