#!/usr/bin/env bash
# Transport benchmark driver: makes TLS test certificates, dumps real
# intermediate activations of zoo models (ONNX Runtime via node; see
# /work/shared/tools/ort_run.js), then runs build/bench/evo_transport_bench.
#   bench/transport_bench.sh [BUILD_DIR]      (default: build)
# Environment: EVO_SHARED (default ../shared), NODE_PATH for onnxruntime-node,
# TP_MODELS (default "mobilenet_v2 resnet18 tiny_kws_dscnn tiny_ad_autoencoder"),
# TP_BENCH_ARGS (extra options, e.g. "--trials 9" or "--path 'evo tcp+stream'").
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
shared=${EVO_SHARED:-$src/../shared}
bin=$build/bench/evo_transport_bench
[ -x "$bin" ] || { echo "build $bin first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
args=()
if bash "$src/scripts/make-test-certs.sh" "$work/certs" >/dev/null 2>&1; then
  args+=(--certs "$work/certs")
fi
export NODE_PATH=${NODE_PATH:-/tmp/ortnpm/node_modules}
if [ -d "$shared/models" ] && command -v node >/dev/null && [ -d "$NODE_PATH/onnxruntime-node" ]; then
  /usr/bin/python3 - "$shared" "$work" "$shared/tools/ort_run.js" \
    ${TP_MODELS:-mobilenet_v2 resnet18 tiny_kws_dscnn tiny_ad_autoencoder} <<'PY'
# Expose a few intermediate tensors of each model as outputs (post-activation
# at 1/4, 1/2, 3/4 depth, one pre-activation Conv output, and the final
# output), run the model on its test input in ORT, and list the tensors.
import json, os, subprocess, sys
import numpy as np
import onnx
from onnx import numpy_helper, shape_inference
shared, work, ort_run, models = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
lines = []
for name in models:
    d = os.path.join(shared, "models", name)
    if not os.path.exists(os.path.join(d, "model.onnx")):
        continue
    m = shape_inference.infer_shapes(onnx.load(os.path.join(d, "model.onnx")))
    vi = {v.name: v for v in list(m.graph.value_info) + list(m.graph.output)}
    acts = [n.output[0] for n in m.graph.node if n.op_type in ("Relu", "Clip") and n.output[0] in vi]
    convs = [n.output[0] for n in m.graph.node if n.op_type == "Conv" and n.output[0] in vi]
    pick = []
    for f in (0.25, 0.5, 0.75):
        if acts:
            pick.append(("act%d" % int(f * 100), acts[int(len(acts) * f)]))
    if convs:
        pick.append(("conv50", convs[len(convs) // 2]))
    have = {o.name for o in m.graph.output}
    for _, t in pick:
        if t not in have:
            m.graph.output.append(vi[t])
            have.add(t)
    mp = os.path.join(work, name + ".onnx")
    onnx.save(m, mp)
    inputs = []
    init = {i.name for i in m.graph.initializer}
    real_inputs = [i for i in m.graph.input if i.name not in init]
    for k, inp in enumerate(real_inputs):
        t = onnx.TensorProto()
        with open(os.path.join(d, "test_data_set_0", "input_%d.pb" % k), "rb") as f:
            t.ParseFromString(f.read())
        a = numpy_helper.to_array(t)
        fn = os.path.join(work, "%s_in%d.bin" % (name, k))
        a.tofile(fn)
        inputs.append({"name": inp.name, "type": str(a.dtype), "dims": list(a.shape), "file": fn})
    man = {"model": mp, "threads": 1, "warmup": 0, "runs": 1, "inputs": inputs,
           "outdir": os.path.join(work, name + "_out")}
    mf = os.path.join(work, name + ".json")
    json.dump(man, open(mf, "w"))
    res = json.loads(subprocess.check_output(["node", ort_run, mf]).decode().strip().splitlines()[-1])
    label = {t: l for l, t in pick}
    for o in res["outputs"]:
        if o["type"] != "float32":
            continue
        l = label.get(o["name"], "out")
        lines.append("%s:%s %s %d %s" % (name, l, o["file"], len(o["dims"]),
                                           " ".join(str(x) for x in o["dims"])))
open(os.path.join(work, "acts.txt"), "w").write("\n".join(lines) + "\n")
PY
  args+=(--acts "$work/acts.txt")
  echo "activations measured:"; sed 's/^/  /' "$work/acts.txt" | awk '{print "  "$1, "dims", $4, $5, $6, $7, $8}'
else
  echo "note: no zoo models or onnxruntime-node: skipping the encoding measurement" >&2
fi
eval "extra=(${TP_BENCH_ARGS:-})"
"$bin" "${args[@]}" "${extra[@]}"
