"""FerryKernels against the im2col + sgemm path and onnxruntime on single-Conv layers.

Usage: .venv/bin/python tools/bench_kernels.py [--threads 1] [--runs 30] [--case NAME]
Runs the release `ferry-bench-kernels` (build it with
`swift build -c release --product ferry-bench-kernels`), which times Ferry's SIMD kernel
(Winograd F(4x4,3x3) or direct depthwise, bias + Relu fused) and the reference runtime's Conv
(im2col + cblas_sgemm, then Relu) on ResNet50 / MobileNetV2 layer shapes; then builds the same
Conv + Relu as an ONNX model and times onnxruntime (all graph optimizations, intra-op threads =
--threads) in the same script run. Prints medians and the ratios kernel / peer (below 1 means
Ferry's kernel is faster). A benchmark, not a test: it never fails on speed.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCH = os.environ.get("FERRY_BENCH_KERNELS", str(ROOT / ".build" / "release" / "ferry-bench-kernels"))


def conv_model(cin, cout, height, width, stride, depthwise):
    group = cin if depthwise else 1
    rng = np.random.default_rng(0)
    w = rng.uniform(-1, 1, (cout, cin // group, 3, 3)).astype(np.float32)
    b = rng.uniform(-1, 1, (cout,)).astype(np.float32)
    out_h = (height + 2 - 3) // stride + 1
    out_w = (width + 2 - 3) // stride + 1
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                          strides=[stride, stride], group=group),
         helper.make_node("Relu", ["c"], ["y"])],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, height, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, out_h, out_w])],
        [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.flatten()),
         helper.make_tensor("b", TensorProto.FLOAT, b.shape, b)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def ort_median(model, shape, runs, threads):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)
    for _ in range(3):
        session.run(None, {"x": x})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {"x": x})
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--case")
    args = parser.parse_args()
    command = [BENCH, "--threads", str(args.threads), "--runs", str(args.runs)]
    if args.case:
        command += ["--case", args.case]
    lines = subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()
    print(f"threads {args.threads}; medians of {args.runs} runs; ratios = Ferry kernel / peer")
    print(f"{'case':18} {'kernel ms':>10} {'im2col ms':>10} {'ort ms':>9} {'vs im2col':>10} {'vs ort':>7} {'err/scale':>10}")
    others = []
    for line in lines:
        r = json.loads(line)
        if "shape" not in r:
            # GEMM, one-row and activation cases compare Ferry's kernels with OpenBLAS or each
            # other in the same process; no onnxruntime model for them.
            others.append(line)
            continue
        cin, cout, h, w, stride = r["shape"]
        model = conv_model(cin, cout, h, w, stride, r["kind"] == "depthwise")
        onnx.checker.check_model(model)
        peer = ort_median(model, [1, cin, h, w], args.runs, args.threads)
        kernel, im2col = r["kernel_ms"], r["im2col_sgemm_ms"]
        print(f"{r['case']:18} {kernel:10.3f} {im2col:10.3f} {peer:9.3f} {kernel / im2col:10.2f} {kernel / peer:7.2f}"
              f" {r['max_error_over_scale']:10.1e}")
    if others:
        print("other cases (packed GEMM wide and narrow vs cblas_sgemm, one-row products, activations):")
        for line in others:
            print(line)


if __name__ == "__main__":
    main()
