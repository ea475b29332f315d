#!/usr/bin/env bash
# Every model in ../shared/models compiled to .evm (with the graph passes, as
# `evo compile` does by default): `evo check` passes on a test dir that holds
# model.evm (instead of model.onnx) next to the reference data. The .evm's
# outputs are bitwise equal to `evo run model.onnx`'s, with the passes and
# without (--no-optimize on both sides): the same kernels run on the same
# plan. The planned activation area is at most 1.10x the
# lower bound; and the file is at most 2% larger than the raw weights plus
# 8 KiB for the tables (header, tensor and node records, params, names).
# Prints one line of figures per model.
set -u
: "${EVO:?EVO must name the evo binary}"
zoo="${EVO_SHARED:-}/models"
[ -n "${EVO_SHARED:-}" ] && [ -d "$zoo" ] || { echo "skip: ../shared/models is absent"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 is needed to read JSON"; exit 77; }
fail=0
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
bad() { echo "FAIL: $*"; fail=1; }

n_models=0
for src in "$zoo"/*/; do
  name=$(basename "$src")
  [ -f "$src/model.onnx" ] || continue
  n_models=$((n_models + 1))
  d="$t/$name"
  mkdir -p "$d"
  "$EVO" -q compile "$src/model.onnx" -o "$d/model.evm" >"$t/out" 2>"$t/err" ||
    { bad "$name: compile exited $?: $(cat "$t/err")"; continue; }
  "$EVO" -q compile "$src/model.onnx" -o "$t/$name.plain.evm" --no-optimize >"$t/out" 2>"$t/err" ||
    { bad "$name: compile --no-optimize exited $?: $(cat "$t/err")"; continue; }
  for set in "$src"/test_data_set_*; do ln -s "$set" "$d/$(basename "$set")"; done

  # evo check on the compiled model against ONNX Runtime's reference outputs
  "$EVO" -q check "$d" >"$t/check" 2>&1 || bad "$name: check of model.evm: $(cat "$t/check")"
  grep -qx "PASS $name" "$t/check" || bad "$name: check of model.evm: $(cat "$t/check")"

  # bitwise: the same inputs through model.onnx and the .evm, with the graph
  # passes (the default of both compile and run) and without
  ins=()
  for f in "$src"/test_data_set_0/input_*.pb; do ins+=(--input "$f"); done
  for variant in opt plain; do
    evm="$d/model.evm" flag=()
    [ "$variant" = plain ] && evm="$t/$name.plain.evm" flag=(--no-optimize)
    "$EVO" -q run "$src/model.onnx" "${ins[@]}" "${flag[@]}" --output-dir "$t/$name.$variant.out-onnx" \
      >/dev/null 2>"$t/err" || bad "$name: run of model.onnx ($variant): $(cat "$t/err")"
    "$EVO" -q run "$evm" "${ins[@]}" --output-dir "$t/$name.$variant.out-evm" >/dev/null 2>"$t/err" ||
      bad "$name: run of the .evm ($variant): $(cat "$t/err")"
    n_out=0
    for f in "$t/$name.$variant.out-onnx"/output_*.pb; do
      [ -f "$f" ] || continue
      n_out=$((n_out + 1))
      cmp -s "$f" "$t/$name.$variant.out-evm/$(basename "$f")" ||
        bad "$name: $(basename "$f") differs between model.onnx and the .evm ($variant)"
    done
    [ "$n_out" -gt 0 ] || bad "$name: no outputs were written ($variant)"
  done

  # figures: file size vs weights, activation area vs its lower bound
  "$EVO" inspect "$d/model.evm" --json >"$t/$name.json" 2>"$t/err" ||
    { bad "$name: inspect of model.evm: $(cat "$t/err")"; continue; }
  python3 - "$t/$name.json" "$name" <<'PY' || bad "$name: size or arena bound"
import json, sys
d = json.load(open(sys.argv[1])); tot = d['totals']
size, w = d['file_bytes'], tot['weights_bytes']
act, low = tot['activation_bytes'], tot['activation_lower_bound']
ratio = act / low if low else 1.0
print('%-20s evm %10d B  weights %10d B  overhead %6d B (%5.2f%%)  activations %9d B  '
      'lower bound %9d B  %.3fx' % (sys.argv[2], size, w, size - w, 100.0 * (size - w) / w,
                                    act, low, ratio))
assert size <= 1.02 * w + 8192, 'file too large'
assert ratio <= 1.10, 'activation area above 1.10x the lower bound'
PY
done
[ "$n_models" -gt 0 ] || { echo "skip: no models in $zoo"; exit 77; }
[ "$fail" -eq 0 ] && echo "evm_zoo: $n_models models compiled, checked and bitwise equal"
exit "$fail"
