"""Peak memory of `ferry convert` against the model's weights (issue 5: converting must not hold
more than about twice the weights).

Usage: .venv/bin/python tools/convert_rss.py --ferry .build/release/ferry [MODEL...] [--synthetic MB]
       [--max-ratio 2.0] [--external-data] [--keep DIR]

Each MODEL (Keras .h5/.keras, Caffe .prototxt, .onnx) is converted to ONNX, and that ONNX file
is converted to ONNX again (the import direction); with --external-data both writes use
X.onnx + X.onnx.data and the second conversion reads the external data back. Each child's peak
resident set size comes from GNU time (`/usr/bin/time`, Debian package `time`). The weights are the initializer bytes of the
written ONNX file. "held" is the peak less the peak of `ferry --version` (the binary and its
libraries), and held / weights must stay at or below --max-ratio, else the exit status is 1.
"""
import argparse
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper


def peak_rss(command):
    """(exit status, stderr, peak RSS in bytes) of one child, measured by GNU time. Not by this
    process's wait4: Linux starts an exec'd child's peak at its parent's (the peak of the
    forked address space is kept across exec), so a child of a large test runner would report
    the runner's peak; GNU time's own children start from its small one."""
    with tempfile.NamedTemporaryFile(mode="r", suffix=".rss") as report:
        result = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", report.name, *command],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        kilobytes = report.read().strip().splitlines()
    if not kilobytes or not kilobytes[-1].isdigit():
        return result.returncode or 1, result.stderr + f"\n(no peak RSS from /usr/bin/time: {kilobytes})", 0
    return result.returncode, result.stderr, int(kilobytes[-1]) * 1024


def weight_bytes(onnx_path):
    """Bytes of the file's initializers, from their dims and element types."""
    model = onnx.load(str(onnx_path), load_external_data=False)
    total = 0
    for t in model.graph.initializer:
        size = np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
        total += int(np.prod(t.dims, dtype=np.int64)) * size
    return total


def synthetic_model(path, megabytes):
    """x (1, n) @ W1 (n, 2n) -> Relu -> @ W2 (2n, n): 4 n^2 float32 weights, about `megabytes` MB."""
    n = max(8, int((megabytes * 1e6 / 16) ** 0.5))
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((n, 2 * n), dtype=np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((2 * n, n), dtype=np.float32), "w2")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("MatMul", ["r", "w2"], ["y"])],
        "synthetic", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, n])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, n])], [w1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*")
    parser.add_argument("--ferry", default=".build/release/ferry")
    parser.add_argument("--max-ratio", type=float, default=2.0)
    parser.add_argument("--external-data", action="store_true")
    parser.add_argument("--keep", help="write the ONNX files here instead of a temporary folder")
    parser.add_argument("--synthetic", type=int, metavar="MB",
                        help="also convert a generated ONNX model (MatMul, Relu, MatMul) with MB megabytes of float32 weights")
    args = parser.parse_args()
    if not args.models and not args.synthetic:
        parser.error("give a model or --synthetic MB")

    status, stderr, base = peak_rss([args.ferry, "--version"])
    if status != 0:
        sys.exit(f"{args.ferry} --version failed: {stderr}")
    print(f"ferry --version peak RSS {base / 1e6:.0f} MB (the binary and its libraries)")
    print(f"{'conversion':<60} {'weights MB':>10} {'peak RSS MB':>11} {'held MB':>8} {'held/weights':>12}")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        extra = ["--external-data"] if args.external_data else []
        models = list(args.models)
        if args.synthetic:
            models.append(str(synthetic_model(folder / "synthetic_source.onnx", args.synthetic)))
        for model in models:
            stem = pathlib.Path(model).stem if pathlib.Path(model).stem not in ("keras3", "keras2", "model") \
                else pathlib.Path(model).parent.name
            first = folder / f"{stem}_ferry.onnx"
            second = folder / f"{stem}_again.onnx"
            for source, target in ((pathlib.Path(model), first), (first, second)):
                command = [args.ferry, "convert", "--force", *extra, str(source), str(target)]
                status, stderr, peak = peak_rss(command)
                if status != 0:
                    print(f"{' '.join(command)} failed ({status}):\n{stderr}")
                    failed = True
                    break
                weights = weight_bytes(target)
                held = peak - base
                ratio = held / weights if weights else float("inf")
                over = ratio > args.max_ratio
                failed |= over
                label = f"{source.name} -> {target.name}" + (" (external data)" if args.external_data else "")
                print(f"{label:<60} {weights / 1e6:>10.0f} {peak / 1e6:>11.0f} {held / 1e6:>8.0f} "
                      f"{ratio:>12.2f}" + (f"  over {args.max_ratio}" if over else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
