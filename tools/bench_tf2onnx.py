"""Ferry's exported ONNX against tf2onnx's for the same Keras models, in one script run.

Usage: .venv/bin/python tools/bench_tf2onnx.py MODEL.h5... [--batch 1] [--runs 20] [--threads 2]
                                                [--onnx-dir DIR] [--by-op]
Each Keras model is converted by `ferry convert` (optimized) and by tf2onnx
(tools/tf2onnx_convert.py in .venv-tf2onnx, made by `tools/setup.sh --tf2onnx`), both at opset
17. Prints node counts; onnxruntime's minimum and median run times, the two files timed in
alternation in one process (all graph optimizations, intra-op threads = --threads); and each
file's kernel time, the sum over its nodes of each kernel's fastest time in an onnxruntime
profile of the same number of runs, with the ratio Ferry's file / tf2onnx's (below 1 means
Ferry's file runs faster). On a loaded machine the run times measure the load; the kernel sum
is the file's own cost. --onnx-dir keeps both files (tf2onnx's are reused when present).
FERRY selects the binary (default .build/release/ferry).
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
TF2ONNX_PYTHON = ROOT / ".venv-tf2onnx" / "bin" / "python"


def ort_session(path, threads):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def alternating_times(sessions, batch, runs, warmup):
    """(median, min) ms of each session, run in turn (A, B, A, B, ...) so load on the machine
    hits both alike. Every session gets the same random inputs (they share the Keras interface)."""
    rng = np.random.default_rng(0)
    feeds = []
    for session in sessions:
        shapes = {i.name: [batch if not isinstance(d, int) else d for d in i.shape] for i in session.get_inputs()}
        feeds.append(shapes)
    values = [rng.uniform(-1, 1, shape).astype(np.float32) for shape in feeds[0].values()]
    feeds = [dict(zip(shapes, values)) for shapes in feeds]
    for _ in range(warmup):
        for session, feed in zip(sessions, feeds):
            session.run(None, feed)
    times = [[] for _ in sessions]
    for _ in range(runs):
        for k, (session, feed) in enumerate(zip(sessions, feeds)):
            start = time.perf_counter()
            session.run(None, feed)
            times[k].append((time.perf_counter() - start) * 1e3)
    return [(statistics.median(t), min(t)) for t in times]


def profiled_kernel_ms(path, batch, runs, threads, tmp):
    """The file's own compute cost, robust to load on the machine: onnxruntime profiles `runs`
    runs, and the fastest time of each node's kernel is summed (a busy machine stretches runs
    at random; the fastest run of each kernel is that kernel's cost)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = str(pathlib.Path(tmp) / (pathlib.Path(path).name + "_profile"))
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {i.name: rng.uniform(-1, 1, [batch if not isinstance(d, int) else d for d in i.shape]).astype(np.float32)
             for i in session.get_inputs()}
    for _ in range(runs):
        session.run(None, feeds)
    profile = pathlib.Path(session.end_profiling())
    events = json.loads(profile.read_text())
    profile.unlink()
    fastest, op_type = {}, {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            fastest[e["name"]] = min(fastest.get(e["name"], float("inf")), e["dur"])
            op_type[e["name"]] = e["args"]["op_name"]
    by_op = {}
    for name, microseconds in fastest.items():
        count, total = by_op.get(op_type[name], (0, 0.0))
        by_op[op_type[name]] = (count + 1, total + microseconds / 1e3)
    return sum(fastest.values()) / 1e3, by_op


def print_by_op(label, by_op):
    """Kernel time per op type (after onnxruntime's fusions), largest first."""
    print(f"  {label}:")
    for op, (count, ms) in sorted(by_op.items(), key=lambda item: -item[1][1]):
        print(f"    {op:28} {count:4d} nodes {ms:9.3f} ms")


def onnx_node_count(path):
    import onnx
    return len(onnx.load(str(path), load_external_data=False).graph.node)


def compare_with_tf2onnx(models, args, tmp):
    """Ferry's exported ONNX against tf2onnx's for the same Keras models."""
    if not TF2ONNX_PYTHON.exists():
        print(f"--tf2onnx: {TF2ONNX_PYTHON} is missing; run tools/setup.sh --tf2onnx", file=sys.stderr)
        return 2
    print(f"{'model (ONNX files)':40} {'ferry nodes':>11} {'tf2onnx nodes':>13} {'ferry min/med ms':>17} "
          f"{'tf2onnx min/med ms':>19} {'ferry kernels ms':>16} {'tf2onnx kernels ms':>18} {'ratio':>6}")
    for model in models:
        if pathlib.Path(model).suffix not in (".h5", ".keras"):
            continue
        # Named by folder and file: fixtures keep one model per folder under the same file name.
        stem = f"{pathlib.Path(model).parent.name}_{pathlib.Path(model).stem}"
        ferry_onnx = pathlib.Path(tmp) / (stem + ".ferry.onnx")
        peer_onnx = pathlib.Path(tmp) / (stem + ".tf2onnx.onnx")
        subprocess.run([FERRY, "convert", model, ferry_onnx, "--force"], check=True, capture_output=True)
        if not peer_onnx.exists():  # kept from an earlier run with the same --onnx-dir
            subprocess.run([TF2ONNX_PYTHON, ROOT / "tools" / "tf2onnx_convert.py", model, peer_onnx, "--opset", "17"],
                           check=True, capture_output=True)
        sessions = [ort_session(ferry_onnx, args.threads), ort_session(peer_onnx, args.threads)]
        extra = [i.name for i in sessions[1].get_inputs()][len(sessions[0].get_inputs()):]
        if extra:
            # tf2onnx left some Keras 3 variables as graph inputs (seen with Normalization).
            print(f"{model:40} {onnx_node_count(ferry_onnx):11d} {onnx_node_count(peer_onnx):13d}  "
                  f"(tf2onnx's file asks for extra inputs {extra}: not timed)")
            continue
        (ferry_med, ferry_min), (peer_med, peer_min) = alternating_times(sessions, args.batch, args.runs, args.warmup)
        ferry_kernels, ferry_by_op = profiled_kernel_ms(ferry_onnx, args.batch, args.runs, args.threads, tmp)
        peer_kernels, peer_by_op = profiled_kernel_ms(peer_onnx, args.batch, args.runs, args.threads, tmp)
        print(f"{model:40} {onnx_node_count(ferry_onnx):11d} {onnx_node_count(peer_onnx):13d} "
              f"{ferry_min:8.3f}/{ferry_med:8.3f} {peer_min:9.3f}/{peer_med:9.3f} "
              f"{ferry_kernels:16.3f} {peer_kernels:18.3f} {ferry_kernels / peer_kernels:6.2f}")
        if args.by_op:
            print_by_op("Ferry's file", ferry_by_op)
            print_by_op("tf2onnx's file", peer_by_op)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--by-op", action="store_true", help="also print each file's kernel time per op type")
    parser.add_argument("--onnx-dir", help="keep both ONNX files here (tf2onnx's are reused if present)")
    args = parser.parse_args()
    if args.onnx_dir:
        pathlib.Path(args.onnx_dir).mkdir(parents=True, exist_ok=True)
        return compare_with_tf2onnx(args.models, args, args.onnx_dir)
    with tempfile.TemporaryDirectory() as tmp:
        return compare_with_tf2onnx(args.models, args, tmp)


if __name__ == "__main__":
    sys.exit(main())
