#!/usr/bin/env bash
# evo inspect and check on the model zoo in ../shared/models: Conv/Gemm/MatMul
# FLOPs of torchvision's mobilenet_v2 (300.8 M multiply-adds) and resnet18
# (1814 M) within 2%, and check passing on two tiny models.
set -u
: "${EVO:?EVO must name the evo binary}"
zoo="${EVO_SHARED:-}/models"
[ -n "${EVO_SHARED:-}" ] && [ -d "$zoo/mobilenet_v2" ] || { echo "skip: ../shared/models is absent"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 is needed to read JSON"; exit 77; }
fail=0
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
bad() { echo "FAIL: $*"; fail=1; }

flops() { # MODEL GFLOPS: the Conv/Gemm/MatMul total within 2%
  "$EVO" inspect "$zoo/$1/model.onnx" --json >"$t/$1.json" 2>"$t/err" ||
    { bad "inspect $1 exited $?: $(cat "$t/err")"; return; }
  python3 - "$t/$1.json" "$2" <<'PY' || bad "inspect $1 FLOPs"
import json, sys
d = json.load(open(sys.argv[1])); want = float(sys.argv[2]) * 1e9
got = d['totals']['conv_gemm_matmul_flops']
print('%s: Conv/Gemm/MatMul %.4f GFLOPs (want %.4f)' % (sys.argv[1].split('/')[-1], got / 1e9, want / 1e9))
assert abs(got - want) <= 0.02 * want
assert d['totals']['macs'] * 2 == d['totals']['flops']
assert d['inputs'][0]['shape'] == [1, 3, 224, 224], d['inputs']
PY
}
flops mobilenet_v2 0.6016
flops resnet18 3.628
"$EVO" inspect "$zoo/resnet18/model.onnx" >"$t/text" || bad "inspect resnet18 text exited $?"
grep -Eq '^Conv/Gemm/MatMul: 3\.(5[6-9]|6|7[0-1])' "$t/text" || bad "resnet18 text FLOPs: $(grep Conv/ "$t/text")"

# check passes on two tiny zoo models
"$EVO" check "$zoo/tiny_kws_dscnn" "$zoo/tiny_ad_autoencoder/" >"$t/out" 2>"$t/err"
rc=$?
[ "$rc" -eq 0 ] || bad "check of two tiny models exited $rc: $(cat "$t/out" "$t/err")"
grep -qx "PASS tiny_kws_dscnn" "$t/out" || bad "tiny_kws_dscnn: $(cat "$t/out")"
grep -qx "PASS tiny_ad_autoencoder" "$t/out" || bad "tiny_ad_autoencoder: $(cat "$t/out")"
tail -1 "$t/out" | grep -qx "2 passed, 0 failed, 0 skipped" || bad "summary: $(tail -1 "$t/out")"

[ "$fail" -eq 0 ] && echo "cli_zoo: all good"
exit "$fail"
