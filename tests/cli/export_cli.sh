#!/usr/bin/env bash
# evo export: every zoo model written back as ONNX (plain and --optimize)
# passes `evo check` against the model's reference data; usage and I/O
# errors give the documented exit codes and name what is wrong.
set -u
: "${EVO:?EVO must name the evo binary}"
zoo="${EVO_SHARED:-}/models"
[ -n "${EVO_SHARED:-}" ] && [ -d "$zoo/resnet18" ] || { echo "skip: ../shared/models is absent"; exit 77; }
fail=0
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
bad() { echo "FAIL: $*"; fail=1; }

for dir in "$zoo"/*/; do
  m=$(basename "$dir")
  [ -f "$dir/model.onnx" ] && [ -d "$dir/test_data_set_0" ] || continue
  for mode in plain optimize; do
    case=$t/$m-$mode
    mkdir -p "$case"
    ln -s "$dir/test_data_set_0" "$case/test_data_set_0"
    flag=""
    [ "$mode" = optimize ] && flag=--optimize
    "$EVO" export "$dir/model.onnx" -o "$case/model.onnx" $flag >"$t/out" 2>"$t/err" ||
      { bad "export $m $mode exited $?: $(cat "$t/err")"; continue; }
    grep -q "^wrote $case/model.onnx: [0-9]* nodes" "$t/out" || bad "export $m output: $(cat "$t/out")"
    if [ "$mode" = optimize ]; then
      grep -q "^optimized: [0-9]* BatchNormalization folded, [0-9]* activations fused" "$t/out" ||
        bad "export $m --optimize report: $(cat "$t/out")"
    fi
    "$EVO" check "$case" >"$t/check" 2>&1 || bad "check of exported $m ($mode): $(cat "$t/check")"
    echo "$m ($mode): $(head -1 "$t/check")"
  done
done
# the autoencoder has BatchNormalization after every Gemm: all folded
"$EVO" export "$zoo/tiny_ad_autoencoder/model.onnx" -o "$t/ae.onnx" --optimize >"$t/out" 2>&1
grep -q "^optimized: 9 BatchNormalization folded, 9 activations fused" "$t/out" ||
  bad "autoencoder passes: $(cat "$t/out")"
"$EVO" export "$zoo/tiny_ad_autoencoder/model.onnx" -o "$t/ae.onnx" --optimize --no-fold-batchnorm >"$t/out" 2>&1
grep -q "^optimized: 0 BatchNormalization folded, 0 activations fused" "$t/out" ||
  bad "autoencoder --no-fold-batchnorm: $(cat "$t/out")"

# errors
m="$zoo/tiny_kws_dscnn/model.onnx"
"$EVO" export "$m" >/dev/null 2>"$t/err"; rc=$?
[ "$rc" -eq 2 ] && grep -q "no output file" "$t/err" || bad "missing -o: rc $rc $(cat "$t/err")"
"$EVO" export -o "$t/x.onnx" >/dev/null 2>"$t/err"; rc=$?
[ "$rc" -eq 2 ] && grep -q "no model given" "$t/err" || bad "missing model: rc $rc $(cat "$t/err")"
"$EVO" export "$m" -o "$t/x.onnx" --bogus >/dev/null 2>"$t/err"; rc=$?
[ "$rc" -eq 2 ] && grep -q "unknown option '--bogus'" "$t/err" || bad "bad flag: rc $rc"
"$EVO" export "$t/missing.onnx" -o "$t/x.onnx" >/dev/null 2>"$t/err"; rc=$?
[ "$rc" -eq 1 ] && grep -q "missing.onnx" "$t/err" || bad "missing model file: rc $rc $(cat "$t/err")"
"$EVO" export "$m" -o "$t/no/such/dir/x.onnx" >/dev/null 2>"$t/err"; rc=$?
[ "$rc" -eq 1 ] && grep -q "no/such/dir/x.onnx" "$t/err" || bad "unwritable output: rc $rc $(cat "$t/err")"
printf 'not a model' >"$t/junk.onnx"
"$EVO" export "$t/junk.onnx" -o "$t/x.onnx" >/dev/null 2>"$t/err"; rc=$?
[ "$rc" -eq 1 ] || bad "junk model: rc $rc"
[ -e "$t/x.onnx" ] && bad "a failed export left $t/x.onnx behind"
"$EVO" help export | grep -q "^usage: evo export" || bad "help export"

[ "$fail" -eq 0 ] && echo "export_cli: all good"
exit "$fail"
