"""Latency of Ferry against onnxruntime on the same models, in one script run.

Usage: .venv/bin/python tools/bench_peers.py [MODEL...] [--apps] [--batch N] [--runs 20] [--rounds 5] [--threads 2] [--rss]
Each model is converted by `ferry convert` to ONNX; `ferry bench` times Ferry's plan runtime on the
model, and onnxruntime (all graph optimizations, intra-op threads = --threads) times the exported
file on the same batch size, models interleaved in one run. Prints a table of medians and the
ratio Ferry / onnxruntime (below 1 means Ferry is faster), with the plan's arena and the weights.
The two alternate in --rounds rounds (default 5) of --runs runs each, and the ratio is the median
of the rounds' ratios (their range is printed too): this machine's second core is at times taken
away for seconds, which halves whichever peer happens to run then; pairing the peers round by
round keeps that out of the ratio. The ms columns are the medians of the rounds' medians.
--apps adds the keras.applications models of fixtures-large/ (`make fixtures-large`).
--rss also runs `ferry run` under /usr/bin/time -v and compares its peak resident memory with the
budget weights + 1.5 x the largest set of intermediates live at once (the plan's peak live bytes),
whole, less the peak of `ferry --version` (the binary and its libraries), and less the peak of
`ferry run` on a 34 KB Keras model (the code a run touches besides).
FERRY selects the binary (default .build/release/ferry).
"""
import argparse
import json
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

ROOT = pathlib.Path(__file__).resolve().parent.parent
FERRY = os.environ.get("FERRY", str(ROOT / ".build" / "release" / "ferry"))
APPS = ["mobilenetv2", "resnet50", "vgg16", "efficientnetb0"]


def ort_session(path, threads):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_feeds(session, batch):
    rng = np.random.default_rng(0)
    feeds = {}
    for i in session.get_inputs():
        shape = [batch if not isinstance(d, int) else d for d in i.shape]
        feeds[i.name] = rng.uniform(-1, 1, shape).astype(np.float32)
    return feeds


def ort_median(session, feeds, runs, warmup):
    for _ in range(warmup):
        session.run(None, feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def ferry_bench(model, args):
    out = subprocess.run([FERRY, "bench", model, "--json", "--batch", str(args.batch), "--runs", str(args.runs),
                          "--warmup", str(args.warmup), "--threads", str(args.threads)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def peak_rss_bytes(model, feeds, tmp, threads):
    """Peak resident memory of `ferry run` on these inputs (whole process: loading included)."""
    inputs = []
    for k, (name, value) in enumerate(feeds.items()):
        path = pathlib.Path(tmp) / f"rss_input_{k}.npy"
        np.save(path, value)
        inputs += ["--input", f"{name}={path}"]
    out_dir = pathlib.Path(tmp) / "rss_out"
    result = subprocess.run(["/usr/bin/time", "-v", FERRY, "run", model, *inputs, "--output-dir", str(out_dir),
                             "--force", "--threads", str(threads)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    return kb * 1024


def run_base_rss_bytes(tmp, threads):
    """Peak resident memory of `ferry run` on a 34 KB Keras model (conv, pooling, dense): the
    binary, its libraries and the code a run touches (importer, libhdf5, optimizer, planner,
    kernels), 11-14 MB more than `ferry --version` touches, with almost no data of a model."""
    small = ROOT / "fixtures" / "keras" / "cnn_gap"
    return peak_rss_bytes(str(small / "keras3.h5"), {"image": np.load(small / "input_0.npy")}, tmp, threads)


def base_rss_bytes():
    """Peak resident memory of `ferry --version`: the binary and its libraries, before any model."""
    result = subprocess.run(["/usr/bin/time", "-v", FERRY, "--version"], capture_output=True, text=True)
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1)) * 1024


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        flags = open("/proc/cpuinfo").read()
        cpu += ", AVX-512" if "avx512f" in flags else (", AVX2" if "avx2" in flags else "")
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {cpu}, load {os.getloadavg()[0]:.2f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*")
    parser.add_argument("--apps", action="store_true", help="add fixtures-large/<app>/keras3.h5 for " + ", ".join(APPS))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5, help="alternations of Ferry and onnxruntime per model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rss", action="store_true", help="measure peak RSS of ferry run")
    args = parser.parse_args()
    models = list(args.models)
    if args.apps:
        models += [str(ROOT / "fixtures-large" / app / "keras3.h5") for app in APPS]
    if not models:
        parser.error("give models or --apps")
    print(f"machine: {machine()}; batch {args.batch}, {args.threads} threads, {args.rounds} rounds of Ferry then onnxruntime, "
          f"each the median of {args.runs} runs after {args.warmup} warm-up; onnxruntime {ort.__version__}")
    header = (f"| {'model':16} | {'Ferry ms':>9} | {'onnxruntime ms':>14} | {'ratio':>5} | {'round ratios':>15} "
              f"| {'arena MB':>8} | {'weights MB':>10} |")
    if args.rss:
        header += f" {'peak RSS MB':>11} | {'RSS - base MB':>13} | {'RSS - run base MB':>17} | {'budget MB':>9} |"
        base = base_rss_bytes()
        with tempfile.TemporaryDirectory() as tmp:
            run_base = run_base_rss_bytes(tmp, args.threads)
        print(f"base: `ferry --version` peaks at {base / 1e6:.1f} MB (binary and libraries); "
              "RSS - base is what running the model adds")
        print(f"run base: `ferry run fixtures/keras/cnn_gap/keras3.h5` peaks at {run_base / 1e6:.1f} MB (the code "
              "a run touches, with a 34 KB model); RSS - run base leaves that code out")
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    ratios = []
    kernels = None
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            name = pathlib.Path(model).parent.name if pathlib.Path(model).stem.startswith("keras") else pathlib.Path(model).stem
            onnx_path = pathlib.Path(tmp) / (name + ".onnx")
            subprocess.run([FERRY, "convert", model, onnx_path, "--force"], check=True, capture_output=True)
            session = ort_session(onnx_path, args.threads)
            feeds = ort_feeds(session, args.batch)
            rounds = []
            for _ in range(max(args.rounds, 1)):
                figures = ferry_bench(model, args)
                rounds.append((figures["medianMilliseconds"], ort_median(session, feeds, args.runs, args.warmup)))
            ferry_ms = statistics.median(f for f, _ in rounds)
            ort_ms = statistics.median(o for _, o in rounds)
            round_ratios = [f / o for f, o in rounds]
            ratio = statistics.median(round_ratios)
            ratios.append(ratio)
            spread = f"{min(round_ratios):.2f}-{max(round_ratios):.2f}"
            row = (f"| {name:16} | {ferry_ms:9.2f} | {ort_ms:14.2f} | {ratio:5.2f} | {spread:>15} | "
                   f"{figures['arenaBytes'] / 1e6:8.1f} | {figures['weightsBytes'] / 1e6:10.1f} |")
            if args.rss:
                rss = peak_rss_bytes(model, feeds, tmp, args.threads)
                budget = figures["weightsBytes"] + 1.5 * figures["peakLiveBytes"]
                row += (f" {rss / 1e6:11.1f} | {(rss - base) / 1e6:13.1f} | {(rss - run_base) / 1e6:17.1f} |"
                        f" {budget / 1e6:9.1f} |")
            print(row, flush=True)
            kernels = figures.get("kernelInstructionSet")
    if kernels:
        print(f"Ferry's SIMD kernels: {kernels}" + ("" if figures.get("simdKernels", True) else " (not run: this CPU lacks them)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
