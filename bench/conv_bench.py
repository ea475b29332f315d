#!/usr/bin/env python3
"""Time single 3x3 convs (the shapes evo's Winograd layout covers, and two it
leaves to the direct kernels) in evo and ONNX Runtime in the same run.

  bench/conv_bench.py [--evo build/evo] [--baseline OTHER_EVO] [--runs 100] [--markdown]

Each case is Conv(3x3, pads 1, bias) + Relu on a [1, C, H, H] input with C
output channels, written with random weights to a temporary model directory
and timed like bench/zoo_bench.py does (same input for both, single thread).
--baseline times a second evo binary too (e.g. one built from an older
commit) and prints its time beside evo's, so a kernel change can be measured
as before/after. Run bench/setup.sh once first (onnxruntime-node).
"""
import argparse, os, sys, tempfile
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zoo_bench import ROOT, evo_time, ort_time, print_table  # noqa: E402

# (channels, side): resnet8's three stages, resnet18's four.
CASES = [(16, 32), (32, 16), (64, 8), (64, 56), (128, 28), (256, 14), (512, 7)]


def write_case(root, c, side):
    d = os.path.join(root, f"conv{c}_{side}")
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    rng = np.random.default_rng(c * 1000 + side)
    w = numpy_helper.from_array((rng.standard_normal((c, c, 3, 3)) * 0.05).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.standard_normal(c).astype(np.float32), "B")
    conv = helper.make_node("Conv", ["X", "W", "B"], ["Y"], pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    relu = helper.make_node("Relu", ["Y"], ["Z"])
    shape = [1, c, side, side]
    g = helper.make_graph([conv, relu], "conv", [helper.make_tensor_value_info("X", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("Z", TensorProto.FLOAT, shape)], [w, b])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, os.path.join(d, "model.onnx"))
    x = numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), "X")
    f = os.path.join(d, "test_data_set_0", "input_0.pb")
    open(f, "wb").write(x.SerializeToString())
    return d, [f]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--evo", default=os.path.join(ROOT, "build", "evo"))
    ap.add_argument("--baseline")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    head = ["conv (C, HxW)", "GFLOP", "ORT ms", "evo ms", "evo/ORT"]
    if a.baseline:
        head += ["baseline ms", "baseline/evo"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for c, side in CASES:
            d, inputs = write_case(tmp, c, side)
            gflop = 2.0 * c * c * 9 * side * side / 1e9
            ort_med, _ = ort_time(d, inputs, a.runs, tmp)
            ev, err = evo_time(a.evo, d, inputs, a.runs)
            if ev is None:
                sys.exit(f"evo failed on conv {c}x{side}: {err}")
            row = [f"{c}, {side}x{side}", f"{gflop:.3f}", f"{ort_med:.3f}", f"{ev['ms_median']:.3f}",
                   f"{ev['ms_median'] / ort_med:.2f}x"]
            if a.baseline:
                bv, err = evo_time(a.baseline, d, inputs, a.runs)
                if bv is None:
                    sys.exit(f"baseline failed on conv {c}x{side}: {err}")
                row += [f"{bv['ms_median']:.3f}", f"{bv['ms_median'] / ev['ms_median']:.2f}x"]
            rows.append(row)
    print_table(head, rows, a.markdown)


if __name__ == "__main__":
    main()
