#!/usr/bin/env python3
"""Helpers for the split CLI tests (needs numpy and onnx).

  split_tool.py cuts MODEL.onnx [N]
      Print N (default 3) comma-separated cut tensors: places in the node
      order where exactly one computed tensor is live (block boundaries, also
      in residual networks), spread over the model at 1/(N+1), 2/(N+1), ...
      Nodes whose inputs are all constant are constants (evo folds them).

  split_tool.py ort SPLIT_DIR MODEL_DIR ORT_RUN_JS [RTOL ATOL]
      Run SPLIT_DIR/stage_K.onnx in ONNX Runtime (node ORT_RUN_JS) in order,
      feeding each stage's inputs by name from the model's reference input
      and earlier stages' outputs (as listed in SPLIT_DIR/manifest.json), and
      compare the model outputs with MODEL_DIR/test_data_set_0/output_K.pb.
      Also checks every stage file with onnx.checker (full_check).
"""
import json, os, subprocess, sys, tempfile
import numpy as np, onnx
from onnx import numpy_helper

NP2ORT = {np.float32: 'float32', np.int64: 'int64', np.int32: 'int32', np.uint8: 'uint8',
          np.int8: 'int8', np.bool_: 'bool', np.float64: 'float64'}
ORT2NP = {v: k for k, v in NP2ORT.items()}


def cuts(path, n):
    m = onnx.load(path, load_external_data=False)
    g = m.graph
    const = {t.name for t in g.initializer}
    inputs = {i.name for i in g.input} - const
    outputs = {o.name for o in g.output}
    nodes = []
    for node in g.node:
        if node.op_type == 'Constant' or all((not x) or x in const for x in node.input):
            const.update(o for o in node.output if o)
        else:
            nodes.append(node)
    first, last = {}, {}
    for k, node in enumerate(nodes):
        for x in node.input:
            if x and x not in const and x not in inputs:
                last[x] = k
        for o in node.output:
            if o:
                first.setdefault(o, k)
    for o in outputs:
        last[o] = len(nodes)
    cands = []
    for k in range(len(nodes)):
        live = [v for v in first if first[v] <= k < last.get(v, -1)]
        if len(live) == 1 and live[0] not in outputs and (not cands or cands[-1] != live[0]):
            cands.append(live[0])
    if len(cands) < n:
        sys.exit('%s: only %d single-tensor boundaries' % (path, len(cands)))
    picked = []
    for q in range(1, n + 1):
        c = cands[min(len(cands) - 1, len(cands) * q // (n + 1))]
        if c not in picked:
            picked.append(c)
    print(','.join(picked))


def read_pb(path):
    t = onnx.TensorProto()
    with open(path, 'rb') as f:
        t.ParseFromString(f.read())
    return t.name, numpy_helper.to_array(t)


def ort(split_dir, model_dir, ort_js, rtol, atol):
    man = json.load(open(os.path.join(split_dir, 'manifest.json')))
    tmp = tempfile.mkdtemp()
    ds = os.path.join(model_dir, 'test_data_set_0')
    pool = {}
    for k, mi in enumerate(man['model_inputs']):
        _, x = read_pb(os.path.join(ds, 'input_%d.pb' % k))
        pool[mi['name']] = x
    for st in man['stages']:
        path = os.path.join(split_dir, st['file'])
        onnx.checker.check_model(onnx.load(path), full_check=True)
        ins = []
        for i, spec in enumerate(st['inputs']):
            x = np.ascontiguousarray(pool[spec['name']])
            assert list(x.shape) == spec['shape'], (spec, x.shape)
            assert x.nbytes == spec['bytes'], spec
            f = os.path.join(tmp, 's%d_in%d.bin' % (st['index'], i))
            x.tofile(f)
            ins.append(dict(name=spec['name'], type=NP2ORT[x.dtype.type], dims=list(x.shape),
                            file=f))
        out_dir = os.path.join(tmp, 'out%d' % st['index'])
        mf = os.path.join(tmp, 'm%d.json' % st['index'])
        json.dump(dict(model=os.path.abspath(path), threads=1, warmup=0, runs=1, inputs=ins,
                       outdir=out_dir), open(mf, 'w'))
        r = subprocess.run(['node', ort_js, mf], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit('%s: ONNX Runtime failed: %s' % (path, r.stderr.strip()))
        res = json.loads(r.stdout)
        got = {o['name'] for o in res['outputs']}
        want = {o['name'] for o in st['outputs']}
        assert got == want, (path, got, want)
        for o in res['outputs']:
            pool[o['name']] = np.fromfile(o['file'], dtype=ORT2NP[o['type']]).reshape(o['dims'])
    worst = 0.0
    for k, mo in enumerate(man['model_outputs']):
        _, ref = read_pb(os.path.join(ds, 'output_%d.pb' % k))
        y = pool[mo['name']]
        assert y.shape == ref.shape, (mo, y.shape, ref.shape)
        if not np.allclose(y, ref, rtol=rtol, atol=atol):
            sys.exit('%s: output %s differs from the reference by up to %g' %
                     (model_dir, mo['name'], float(np.max(np.abs(y - ref)))))
        worst = max(worst, float(np.max(np.abs(y.astype(np.float64) - ref))))
    print('%d stages in ONNX Runtime match the reference (max abs diff %.3g)' %
          (len(man['stages']), worst))


if __name__ == '__main__':
    if len(sys.argv) >= 3 and sys.argv[1] == 'cuts':
        cuts(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 3)
    elif len(sys.argv) >= 5 and sys.argv[1] == 'ort':
        rtol = float(sys.argv[5]) if len(sys.argv) > 5 else 1e-3
        atol = float(sys.argv[6]) if len(sys.argv) > 6 else 1e-4
        ort(sys.argv[2], sys.argv[3], sys.argv[4], rtol, atol)
    else:
        sys.exit(__doc__)
