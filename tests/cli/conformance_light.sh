#!/usr/bin/env bash
# ONNX "light" networks (../shared/onnx-tests/light): real architectures
# (AlexNet, DenseNet-121, Inception v1/v2, ResNet-50, ShuffleNet, SqueezeNet,
# VGG-19, ZFNet) whose weights were replaced by ConstantOfShape nodes of
# zeros. They ship model + expected output only; with zero weights the output
# does not depend on the input, so each is laid out as an ONNX test dir with a
# zero input and checked like any other suite.
set -u
src="$EVO_SHARED/onnx-tests/light"
[ -d "$src" ] || { echo "skip: $src is absent"; exit 77; }
py=/usr/bin/python3
$py -c 'import onnx, numpy' 2>/dev/null || { echo "skip: python3-onnx/numpy missing"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$py - "$src" "$work" <<'PY'
import glob, os, sys
import numpy as np, onnx
from onnx import numpy_helper
src, work = sys.argv[1], sys.argv[2]
for path in sorted(glob.glob(os.path.join(src, "*.onnx"))):
    name = os.path.basename(path)[:-5]
    d = os.path.join(work, name, "test_data_set_0")
    os.makedirs(d)
    os.symlink(path, os.path.join(work, name, "model.onnx"))
    os.symlink(os.path.join(src, name + "_output_0.pb"), os.path.join(d, "output_0.pb"))
    m = onnx.load(path, load_external_data=False)
    inits = {t.name for t in m.graph.initializer}
    for k, vi in enumerate(i for i in m.graph.input if i.name not in inits):
        shape = [dim.dim_value or 1 for dim in vi.type.tensor_type.shape.dim]
        x = np.zeros(shape, dtype=np.float32)
        with open(os.path.join(d, f"input_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(x, vi.name).SerializeToString())
PY
exec bash "$EVO_SRC/tests/conformance/run_suite.sh" light 9 "$work"/*/
