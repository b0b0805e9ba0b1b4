"""A real ONNX model over 2 GiB through Ferry and back (issue 5: models over 2 GB are written
with external data, X.onnx + X.onnx.data, and read back). `make test-large` runs it (it writes
about 7.5 GB to a temporary folder and needs about 3 GB of memory per step).

Usage: .venv/bin/python tools/large_external_data.py --ferry .build/release/ferry [--keep DIR]
       [--layers 9] [--width 8192]

1. Generates a source model with onnx's helper: x (1, width) through `layers` MatMul + Tanh steps
   with seeded random (width, width) float32 weights (9 x 256 MiB = 2.25 GiB), whose bytes are
   written to `source.onnx.weights` as onnx external data, so that this script never holds them.
2. onnxruntime runs the source model on a seeded input: the reference output.
3. `ferry convert source.onnx large.onnx` (no --external-data: the size alone must make Ferry
   write large.onnx + large.onnx.data); the ONNX checker (full_check, from the path) and
   onnxruntime must accept the result and give the reference output.
4. Read back: `ferry convert large.onnx again.onnx` and `ferry run large.onnx` read the external
   data; again.onnx must run in onnxruntime and ferry run's output must match the reference, by
   the project's rule |a - b| <= 1e-4 * max(1, max|ref|).
Each conversion's peak RSS (GNU time) is printed with the weights; above 2x the weights fails.
Exit status 0 when everything holds, 1 otherwise.
"""
import argparse
import gc
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from convert_rss import peak_rss  # noqa: E402


def make_source(folder, layers, width):
    """source.onnx with its weights in source.onnx.weights (written tensor by tensor)."""
    rng = np.random.default_rng(5)
    weights_name = "source.onnx.weights"
    initializers = []
    nodes = []
    offset = 0
    with open(folder / weights_name, "wb") as data:
        previous = "x"
        for i in range(layers):
            w = (rng.standard_normal((width, width), dtype=np.float32) * np.float32(1.5 / np.sqrt(width)))
            data.write(w.tobytes())
            tensor = onnx.TensorProto(name=f"w{i}", data_type=onnx.TensorProto.FLOAT, dims=[width, width])
            for key, value in (("location", weights_name), ("offset", offset), ("length", w.nbytes)):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, str(value)
            tensor.data_location = onnx.TensorProto.EXTERNAL
            offset += w.nbytes
            del w
            initializers.append(tensor)
            last = i == layers - 1
            nodes.append(helper.make_node("MatMul", [previous, f"w{i}"], ["y" if last else f"m{i}"], name=f"dense{i}"))
            if not last:
                nodes.append(helper.make_node("Tanh", [f"m{i}"], [f"h{i}"], name=f"tanh{i}"))
                previous = f"h{i}"
    graph = helper.make_graph(nodes, "large", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, width])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, width])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # opset 17's; onnx's newest would be more than onnxruntime reads
    path = folder / "source.onnx"
    onnx.save(model, str(path))
    onnx.checker.check_model(str(path), full_check=True)
    return path, offset


def run_onnxruntime(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": x})
    del session
    gc.collect()
    return y


def agrees(result, reference, tol=1e-4):
    bound = tol * max(1.0, float(np.max(np.abs(reference))))
    diff = float(np.max(np.abs(result.astype(np.float64) - reference)))
    return diff <= bound, diff, bound


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ferry", default=".build/release/ferry")
    parser.add_argument("--keep", help="work in this folder instead of a temporary one")
    parser.add_argument("--layers", type=int, default=9)
    parser.add_argument("--width", type=int, default=8192)
    args = parser.parse_args()

    failures = []

    def check(ok, what):
        print(("ok    " if ok else "FAIL  ") + what, flush=True)
        if not ok:
            failures.append(what)

    with tempfile.TemporaryDirectory(dir=args.keep) as tmp:
        folder = pathlib.Path(tmp)
        source, weight_bytes = make_source(folder, args.layers, args.width)
        print(f"source model: {args.layers} weights, {weight_bytes / 2**30:.2f} GiB in {source.name}.weights", flush=True)
        x = np.random.default_rng(6).standard_normal((1, args.width), dtype=np.float32)
        np.save(folder / "x.npy", x)
        reference = run_onnxruntime(source, x)

        _, base = peak_rss([args.ferry, "--version"])[1:]

        def convert(src, dst):
            status, stderr, peak = peak_rss([args.ferry, "convert", "--force", str(src), str(dst)])
            ratio = (peak - base) / weight_bytes
            print(f"      ferry convert {src.name} {dst.name}: peak RSS {peak / 1e9:.2f} GB, "
                  f"{ratio:.2f}x the weights above ferry --version", flush=True)
            check(status == 0, f"ferry convert {src.name} {dst.name} exits 0" + (f" ({status}: {stderr.strip()})" if status else ""))
            check(ratio <= 2.0, f"ferry convert {src.name} {dst.name} holds at most 2x the weights")
            return status == 0

        large = folder / "large.onnx"
        if convert(source, large):
            data = large.with_name("large.onnx.data")
            check(data.exists() and data.stat().st_size >= weight_bytes,
                  f"large.onnx.data written ({data.stat().st_size if data.exists() else 0} bytes)")
            check(large.stat().st_size < 1 << 20, f"large.onnx holds no weights ({large.stat().st_size} bytes)")
            try:
                onnx.checker.check_model(str(large), full_check=True)
                check(True, "onnx.checker.check_model(large.onnx, full_check=True)")
            except Exception as e:  # noqa: BLE001 - report any checker failure
                check(False, f"onnx.checker.check_model(large.onnx, full_check=True): {e}")
            ok, diff, bound = agrees(run_onnxruntime(large, x), reference)
            check(ok, f"onnxruntime on large.onnx matches the source (max |diff| {diff:.3g}, bound {bound:.3g})")

            again = folder / "again.onnx"
            if convert(large, again):
                ok, diff, bound = agrees(run_onnxruntime(again, x), reference)
                check(ok, f"onnxruntime on again.onnx (read back from large.onnx.data) matches (max |diff| {diff:.3g})")
            out = folder / "ferry_y.npy"
            result = subprocess.run([args.ferry, "run", str(large), "--input", str(folder / "x.npy"), "--output", str(out)],
                                    capture_output=True, text=True)
            check(result.returncode == 0, "ferry run large.onnx exits 0" + (f": {result.stderr.strip()}" if result.returncode else ""))
            if result.returncode == 0:
                ok, diff, bound = agrees(np.load(out), reference)
                check(ok, f"ferry run large.onnx matches onnxruntime on the source (max |diff| {diff:.3g}, bound {bound:.3g})")
    print(f"{len(failures)} failed" if failures else "all passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
