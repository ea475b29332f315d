#!/usr/bin/env python3
"""Make examples/models/tiny_mlp: a 64-32-10 MLP with seeded random weights
(Gemm, Relu, Gemm, Softmax), bundled so `make demo` works without ../shared.
Reference outputs come from ONNX Runtime via ../shared/tools/ort_reference.py:
  python3 make_tiny_mlp.py && NODE_PATH=... python3 ../../../shared/tools/ort_reference.py tiny_mlp
"""
import os
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

rng = np.random.default_rng(7)
w1 = (rng.standard_normal((32, 64)) * 0.2).astype(np.float32)
b1 = (rng.standard_normal(32) * 0.1).astype(np.float32)
w2 = (rng.standard_normal((10, 32)) * 0.2).astype(np.float32)
b2 = (rng.standard_normal(10) * 0.1).astype(np.float32)
nodes = [
    helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
    helper.make_node("Relu", ["h"], ["hr"], name="relu1"),
    helper.make_node("Gemm", ["hr", "w2", "b2"], ["logits"], name="fc2", transB=1),
    helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=-1),
]
g = helper.make_graph(
    nodes, "tiny_mlp",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
    [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 10])],
    [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="evo-examples")
m.ir_version = 7
onnx.checker.check_model(m)
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny_mlp")
os.makedirs(out, exist_ok=True)
onnx.save(m, os.path.join(out, "model.onnx"))
