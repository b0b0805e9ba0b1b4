"""Peak memory of `ferry run` against issue 7's budget: the weights plus 1.5 x the largest set of
intermediates live at once (the plan's peak live bytes, from `ferry bench --json`).

Usage: .venv/bin/python tools/run_rss.py --ferry .build/debug/ferry [MODEL...] [--synthetic MB]
       [--base MODEL] [--max-over MB]

What a model adds is the peak resident set size of `ferry run MODEL` (GNU time) less a base: by
default the peak of `ferry run` on a model of the same ops with a few kilobytes of weights
(`--synthetic`: the same generated graph with 8 channels; `--base MODEL` for given models), less
that small model's own budget. That base is the binary, its libraries and the code the command
runs (importer, optimizer, planner, kernels, .npy writing), about 11 MB more than `ferry
--version` touches; it counts no data of the model. Exit status 1 when a model adds more than
its budget plus --max-over MB.

"more code MB" is how much more of the binary's and libraries' code (file-backed pages) the
model's run has resident at its end than the base's: kernels the base does not run (Winograd,
depthwise, other activations) touch more of the binary whatever the model's size. The last
column leaves it out of what the model adds; the exit status does not.

--synthetic MB generates an ONNX model of about MB megabytes of float32 weights: a 1x1 Conv, a
3x3 Conv of stride 2 (im2col with packed weights), Relu, global pooling and a Gemm, on a
(1, 64, 16, 16) input.
"""
import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper


def peak_rss(command):
    """Peak RSS in bytes of one child, by GNU time (see tools/convert_rss.py for why not wait4)."""
    with tempfile.NamedTemporaryFile(mode="r", suffix=".rss") as report:
        result = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", report.name, *command],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        lines = report.read().strip().splitlines()
    if result.returncode != 0 or not lines or not lines[-1].isdigit():
        raise RuntimeError(f"{' '.join(map(str, command))} failed ({result.returncode}): {result.stderr[-2000:]}")
    return int(lines[-1]) * 1024


def synthetic_model(path, channels):
    """x (1, 64, 16, 16) -> Conv 1x1 to `channels` -> Relu -> Conv 3x3 stride 2 -> Relu ->
    GlobalAveragePool -> Flatten -> Gemm (channels x channels): 11 channels^2 weights about."""
    rng = np.random.default_rng(0)
    def weight(name, shape):
        return numpy_helper.from_array((rng.standard_normal(shape, dtype=np.float32) * 0.05), name)
    inits = [weight("w1", (channels, 64, 1, 1)), weight("b1", (channels,)),
             weight("w2", (channels, channels, 3, 3)), weight("b2", (channels,)),
             weight("w3", (channels, channels)), weight("b3", (channels,))]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"]), helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["r2"]), helper.make_node("GlobalAveragePool", ["r2"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]), helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "run_rss", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 64, 16, 16])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, channels])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def figures(ferry, model):
    """(weights bytes, peak live bytes) of the model's plan for its inputs at batch 1."""
    out = subprocess.run([ferry, "bench", str(model), "--json", "--runs", "1", "--warmup", "0", "--threads", "2"],
                         check=True, capture_output=True, text=True).stdout
    bench = json.loads(out)
    return bench["weightsBytes"], bench["peakLiveBytes"]


def run_peak(ferry, model, inputs, tmp):
    """Peak RSS of `ferry run` on the model with these .npy inputs (2 threads)."""
    args = [a for path in inputs for a in ("--input", str(path))]
    return peak_rss([ferry, "run", str(model), *args, "--output-dir", str(pathlib.Path(tmp) / "out"),
                     "--force", "--threads", "2"])


def code_pages(ferry, model, inputs, tmp):
    """File-backed resident bytes (the binary's and libraries' code and read-only data) at the end
    of a traced `ferry run` (FERRY_TRACE_MEMORY's last line): which kernels a model's plan runs
    decides how much of the binary's code it touches, whatever the size of its data."""
    args = [a for path in inputs for a in ("--input", str(path))]
    result = subprocess.run([ferry, "run", str(model), *args, "--output-dir", str(pathlib.Path(tmp) / "out"), "--force",
                             "--threads", "2"], capture_output=True, text=True, env={**os.environ, "FERRY_TRACE_MEMORY": "1"})
    lines = [l for l in result.stderr.splitlines() if l.startswith("memory:")]
    match = re.search(r"files\s+([0-9.]+)", lines[-1]) if lines else None
    if result.returncode != 0 or match is None:
        raise RuntimeError(f"traced run of {model} failed ({result.returncode}): {result.stderr[-2000:]}")
    return float(match.group(1)) * 1e6


def input_files(ferry, model, tmp, tag):
    """Random .npy inputs of the model's input shapes at batch 1 (read from `ferry inspect --json`)."""
    info = json.loads(subprocess.run([ferry, "inspect", str(model), "--json"], check=True, capture_output=True,
                                     text=True).stdout)
    rng = np.random.default_rng(0)
    paths = []
    for k, value in enumerate(info["inputs"]):
        # Named (symbolic) dimensions are the batch: 1.
        shape = [int(d) if str(d).isdigit() else 1 for d in value["shape"]]
        path = pathlib.Path(tmp) / f"{tag}_input_{k}.npy"
        np.save(path, rng.uniform(-1, 1, shape).astype(np.float32))
        paths.append(path)
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*")
    parser.add_argument("--ferry", required=True)
    parser.add_argument("--synthetic", type=float, help="generate a model of about this many MB of weights")
    parser.add_argument("--base", help="the small model whose run is the base for the given models")
    parser.add_argument("--max-over", type=float, default=None, help="fail when a model adds more than budget + this many MB")
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        cases = []
        if args.synthetic:
            channels = max(8, int((args.synthetic * 1e6 / 4 / 11) ** 0.5))
            big, small = pathlib.Path(tmp) / "synthetic.onnx", pathlib.Path(tmp) / "synthetic_small.onnx"
            synthetic_model(big, channels)
            synthetic_model(small, 8)
            cases.append((big, small))
        cases += [(pathlib.Path(m), pathlib.Path(args.base) if args.base else None) for m in args.models]
        version = peak_rss([args.ferry, "--version"])
        print(f"`ferry --version` peaks at {version / 1e6:.1f} MB")
        print("| model | peak RSS MB | base MB | adds MB | weights MB | peak live MB | budget MB | adds / budget "
              "| more code MB | adds less code / budget |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for model, base_model in cases:
            weights, live = figures(args.ferry, model)
            budget = weights + 1.5 * live
            inputs = input_files(args.ferry, model, tmp, "model")
            peak = run_peak(args.ferry, model, inputs, tmp)
            if base_model is not None:
                base_weights, base_live = figures(args.ferry, base_model)
                base_inputs = input_files(args.ferry, base_model, tmp, "base")
                base = run_peak(args.ferry, base_model, base_inputs, tmp) - (base_weights + 1.5 * base_live)
                code = code_pages(args.ferry, model, inputs, tmp) - code_pages(args.ferry, base_model, base_inputs, tmp)
            else:
                base = version
                code = 0.0
            adds = peak - base
            # bench-models/resnet50/keras3.h5: the folder names the model.
            label = model.name if model.parent == pathlib.Path(tmp) else f"{model.parent.name}/{model.name}"
            print(f"| {label} | {peak / 1e6:.1f} | {base / 1e6:.1f} | {adds / 1e6:.1f} | {weights / 1e6:.1f} | "
                  f"{live / 1e6:.1f} | {budget / 1e6:.1f} | {adds / budget:.3f} | {code / 1e6:.1f} | "
                  f"{(adds - code) / budget:.3f} |", flush=True)
            if args.max_over is not None and adds > budget + args.max_over * 1e6:
                print(f"FAIL: {label} adds {adds / 1e6:.1f} MB, more than its budget {budget / 1e6:.1f} MB "
                      f"+ {args.max_over} MB")
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
