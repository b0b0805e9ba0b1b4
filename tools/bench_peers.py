"""Latency of Ferry against onnxruntime on the same models, in one script run.

Usage: .venv/bin/python tools/bench_peers.py MODEL... [--batch N] [--runs 20] [--threads 2]
Each model is converted by `ferry convert` to ONNX; `ferry bench` times Ferry's runtime on the
model, and onnxruntime (all graph optimizations, intra-op threads = --threads) times the exported
file on the same batch size. Prints the medians and the ratio Ferry / onnxruntime
(below 1 means Ferry is faster). FERRY selects the binary (default .build/release/ferry).
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

ROOT = pathlib.Path(__file__).resolve().parent.parent
FERRY = os.environ.get("FERRY", str(ROOT / ".build" / "release" / "ferry"))


def ort_median(path, batch, runs, warmup, threads):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {}
    for i in session.get_inputs():
        shape = [batch if not isinstance(d, int) else d for d in i.shape]
        feeds[i.name] = rng.uniform(-1, 1, shape).astype(np.float32)
    for _ in range(warmup):
        session.run(None, feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(f"{'model':40} {'ferry ms':>10} {'ort ms':>10} {'ratio':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            onnx_path = pathlib.Path(tmp) / (pathlib.Path(model).stem + ".onnx")
            subprocess.run([FERRY, "convert", model, onnx_path, "--force"], check=True, capture_output=True)
            out = subprocess.run([FERRY, "bench", model, "--json", "--batch", str(args.batch), "--runs", str(args.runs),
                                  "--warmup", str(args.warmup), "--threads", str(args.threads)],
                                 check=True, capture_output=True, text=True)
            ferry_ms = json.loads(out.stdout)["medianMilliseconds"]
            ort_ms = ort_median(onnx_path, args.batch, args.runs, args.warmup, args.threads)
            print(f"{model:40} {ferry_ms:10.3f} {ort_ms:10.3f} {ferry_ms / ort_ms:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
