#!/usr/bin/env python3
"""Time evo and ONNX Runtime on the same models in the same run.

  bench/zoo_bench.py [--evo build/evo] [--runs 20] [--rounds 3] [--threads N] [--models DIR ...]
                     [--markdown]

For each model directory (default: every model in ../shared/models) it feeds
the same input (test_data_set_0/input_*.pb) to ORT (single thread, through
../shared/tools/ort_run.js) and to `evo run --json`, and prints median/min ms
and the evo/ORT ratio, plus evo's arena beside its lower bound. --threads N
(default 1) gives ORT N intra-op threads and evo `--threads N`.

Each model is timed in --rounds rounds of --runs runs per runtime, the two
runtimes alternating (ORT first in even rounds, evo first in odd ones), so
that a change in the machine's load during the run hits both alike. The
table shows the median over the rounds of each round's median, the ratio of
those, and the range of the per-round ratios (on a shared machine ORT's own
median moves by up to a third between runs of a few seconds).
Run bench/setup.sh once first (it installs onnxruntime-node into bench/).
"""
import argparse, glob, json, os, subprocess, sys, tempfile
import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.environ.get("EVO_SHARED", os.path.join(ROOT, "..", "shared"))
NP2ORT = {np.float32: "float32", np.int64: "int64", np.int32: "int32", np.uint8: "uint8",
          np.int8: "int8", np.bool_: "bool"}


def ort_time(model_dir, inputs, runs, tmp, threads=1):
    m = onnx.load(os.path.join(model_dir, "model.onnx"), load_external_data=False)
    inits = {t.name for t in m.graph.initializer}
    names = [i.name for i in m.graph.input if i.name not in inits]
    feeds = []
    for k, (name, f) in enumerate(zip(names, inputs)):
        t = onnx.TensorProto()
        t.ParseFromString(open(f, "rb").read())
        x = numpy_helper.to_array(t)
        raw = os.path.join(tmp, f"in{k}.bin")
        np.ascontiguousarray(x).tofile(raw)
        feeds.append(dict(name=name, type=NP2ORT[x.dtype.type], dims=list(x.shape), file=raw))
    man = dict(model=os.path.abspath(os.path.join(model_dir, "model.onnx")), threads=threads, warmup=3,
               runs=runs, inputs=feeds, outdir=tmp)
    mf = os.path.join(tmp, "m.json")
    json.dump(man, open(mf, "w"))
    env = dict(os.environ)
    env.setdefault("NODE_PATH", os.path.join(HERE, "node_modules"))
    out = subprocess.run(["node", os.path.join(SHARED, "tools", "ort_run.js"), mf], check=True,
                         capture_output=True, text=True, env=env).stdout
    r = json.loads(out)
    return r["ms_median"], r["ms_min"]


def evo_time(evo, model_dir, inputs, runs, threads=1):
    cmd = [evo, "run", os.path.join(model_dir, "model.onnx"), "--repeat", str(runs), "--json",
           "--threads", str(threads)]
    for f in inputs:
        cmd += ["--input", f]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return None, p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "failed"
    return json.loads(p.stdout.strip().splitlines()[-1]), None


def print_table(head, rows, markdown):
    """rows of strings under head, as a markdown table or aligned columns."""
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in rows:
            print("| " + " | ".join(r) + " |")
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--evo", default=os.path.join(ROOT, "build", "evo"))
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--models", nargs="*")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    dirs = a.models or sorted(glob.glob(os.path.join(SHARED, "models", "*")))
    if not dirs:
        sys.exit("no models found (is ../shared present?)")
    rows = []
    for d in dirs:
        inputs = sorted(glob.glob(os.path.join(d, "test_data_set_0", "input_*.pb")))
        name = os.path.basename(d.rstrip("/"))
        ort_meds, evo_runs, err = [], [], None
        for r in range(max(1, a.rounds)):
            for which in (("ort", "evo") if r % 2 == 0 else ("evo", "ort")):
                if which == "ort":
                    with tempfile.TemporaryDirectory() as tmp:
                        ort_meds.append(ort_time(d, inputs, a.runs, tmp, a.threads)[0])
                elif err is None:
                    ev, err = evo_time(a.evo, d, inputs, a.runs, a.threads)
                    if ev is not None:
                        evo_runs.append(ev)
        if err is not None:
            rows.append((name, float(np.median(ort_meds)), None, None, None, None, None, err))
            continue
        ratios = [e["ms_median"] / o for e, o in zip(evo_runs, ort_meds)]
        ev = evo_runs[0]
        rows.append((name, float(np.median(ort_meds)),
                     float(np.median([e["ms_median"] for e in evo_runs])),
                     min(e["ms_min"] for e in evo_runs), (min(ratios), max(ratios)),
                     ev["arena_bytes"], ev["arena_lower_bound"], None))
    hdr = ["model", "ORT ms", "evo ms", "evo min ms", "evo/ORT", "per-round ratios", "arena KiB",
           "lower bound KiB", "arena/bound"]
    lines = []
    for name, om, em, emin, rr, ar, lb, err in rows:
        if em is None:
            lines.append([name, f"{om:.3f}", "error: " + err] + [""] * 6)
            continue
        lines.append([name, f"{om:.3f}", f"{em:.3f}", f"{emin:.3f}", f"{em / om:.2f}x",
                      f"{rr[0]:.2f}-{rr[1]:.2f}", f"{ar / 1024:.1f}", f"{lb / 1024:.1f}",
                      f"{ar / max(lb, 1):.3f}"])
    print_table(hdr, lines, a.markdown)


if __name__ == "__main__":
    main()
