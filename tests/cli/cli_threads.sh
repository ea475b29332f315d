#!/usr/bin/env bash
# evo run/check --threads N: the zoo models still match ONNX Runtime's
# reference outputs when big Convs are split over 2 and 3 threads (3 splits
# channel counts unevenly), and bad thread counts are usage errors (run and
# node).
set -u
: "${EVO:?EVO must name the evo binary}"
shared=${EVO_SHARED:-}
fail=0
bad() { echo "FAIL: $*"; fail=1; }

for n in 0 65 x; do
  "$EVO" run "${EVO_SRC:-.}/examples/models/tiny_mlp/model.onnx" --threads "$n" >/dev/null 2>&1
  [ $? -eq 2 ] || bad "--threads $n is not a usage error"
  # evo node checks its flags before it contacts any coordinator
  err=$("$EVO" node --name t --coordinator tcp://127.0.0.1:1 --threads "$n" 2>&1 >/dev/null)
  [ $? -eq 2 ] || bad "evo node --threads $n is not a usage error"
  echo "$err" | grep -q -- "--threads" || bad "evo node --threads $n: unclear error: $err"
done

models=()
for m in mobilenet_v2 squeezenet1_1 tiny_ic_resnet8 tiny_vww_mbv1; do
  [ -n "$shared" ] && [ -d "$shared/models/$m" ] && models+=("$shared/models/$m")
done
if [ ${#models[@]} -eq 0 ]; then
  echo "skip: no zoo models (EVO_SHARED unset or empty)"
  [ $fail -eq 0 ] && exit 77 || exit 1
fi
for n in 2 3; do
  out=$("$EVO" check "${models[@]}" --threads "$n" 2>&1) || bad "check --threads $n: $out"
  echo "$out" | tail -1
done
exit $fail
