#!/usr/bin/env python3
"""Check an exported ONNX model with the ONNX checker and run it in onnxruntime.

Usage:
  onnx_crosscheck.py MODEL.onnx [--input NAME=FILE.npy ...] [--expect NAME=FILE.npy ...]
                     [--rtol 1e-4] [--dim N=2 ...] [--seed 0] [--save-outputs DIR]

Steps:
  1. onnx.checker.check_model(onnx.load(MODEL), full_check=True)  (strict shape inference)
  2. run the model in onnxruntime (CPUExecutionProvider, all graph optimizations on)
  3. compare each --expect output: |a - b| <= rtol * max(1, max|ref|)

Graph inputs without --input get seeded random normal data; symbolic dimensions are bound
with --dim NAME=SIZE (default 1). Prints one line per output. Exit status: 0 all outputs
match (or nothing to compare), 1 a mismatch, 2 a load, checker, usage or runtime error.

Run with /work/main/.venv/bin/python (numpy, onnx, onnxruntime).
"""

import argparse
import os
import sys

import numpy as np


def fail(message, status=2):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(status)


def name_file_pairs(items, what):
    pairs = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            fail(f"{what} '{item}' should be NAME=FILE.npy")
        if name in pairs:
            fail(f"{what} '{name}' given twice")
        pairs[name] = path
    return pairs


def load_npy(path, what):
    try:
        return np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - report any unreadable file the same way
        fail(f"{path}: cannot read {what}: {e}")


def onnx_to_numpy_dtype(elem_type):
    from onnx import helper
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))


def random_input(value_info, dims, rng):
    tensor_type = value_info.type.tensor_type
    shape = []
    for d in tensor_type.shape.dim:
        if d.HasField("dim_value"):
            shape.append(d.dim_value)
        elif d.HasField("dim_param") and d.dim_param in dims:
            shape.append(dims[d.dim_param])
        else:
            shape.append(1)
    dtype = onnx_to_numpy_dtype(tensor_type.elem_type)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(dtype)
    return rng.integers(0, 8, size=shape).astype(dtype)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    parser.add_argument("--expect", action="append", default=[], metavar="NAME=FILE.npy")
    parser.add_argument("--rtol", type=float, default=1e-4,
                        help="tolerance relative to max(1, max|reference|) (default 1e-4)")
    parser.add_argument("--dim", action="append", default=[], metavar="NAME=SIZE",
                        help="size of a symbolic dimension for generated inputs (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed for generated inputs")
    parser.add_argument("--save-outputs", metavar="DIR", help="write every output as DIR/NAME.npy")
    parser.add_argument("--save-inputs", metavar="DIR", help="write every input fed as DIR/NAME.npy")
    args = parser.parse_args()

    import onnx
    try:
        model = onnx.load(args.model)
    except Exception as e:  # noqa: BLE001
        fail(f"{args.model}: cannot load: {e}")
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # noqa: BLE001
        fail(f"{args.model}: checker: {e}")
    print(f"checker: ok (ir_version {model.ir_version}, opset "
          + ", ".join(f"{o.domain or 'ai.onnx'}:{o.version}" for o in model.opset_import) + ")")

    input_files = name_file_pairs(args.input, "--input")
    expect_files = name_file_pairs(args.expect, "--expect")
    dims = {}
    for item in args.dim:
        name, sep, size = item.partition("=")
        if not sep or not size.isdigit():
            fail(f"--dim '{item}' should be NAME=SIZE")
        dims[name] = int(size)

    initializer_names = {t.name for t in model.graph.initializer}
    graph_inputs = [v for v in model.graph.input if v.name not in initializer_names]
    input_names = {v.name for v in graph_inputs}
    output_names = [v.name for v in model.graph.output]
    for name in input_files:
        if name not in input_names:
            fail(f"--input '{name}' is not a graph input (inputs: {', '.join(sorted(input_names))})")
    for name in expect_files:
        if name not in output_names:
            fail(f"--expect '{name}' is not a graph output (outputs: {', '.join(output_names)})")

    rng = np.random.default_rng(args.seed)
    feeds = {}
    for v in graph_inputs:
        if v.name in input_files:
            feeds[v.name] = load_npy(input_files[v.name], f"input '{v.name}'")
        else:
            feeds[v.name] = random_input(v, dims, rng)
            print(f"input {v.name}: random {feeds[v.name].dtype}{list(feeds[v.name].shape)}")

    import onnxruntime as ort
    try:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(model.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        results = session.run(output_names, feeds)
    except Exception as e:  # noqa: BLE001
        fail(f"{args.model}: onnxruntime: {e}")

    for directory, arrays in ((args.save_inputs, feeds), (args.save_outputs, dict(zip(output_names, results)))):
        if directory:
            os.makedirs(directory, exist_ok=True)
            for name, array in arrays.items():
                safe = name.replace("/", "_").replace(":", "_")
                np.save(os.path.join(directory, safe + ".npy"), array)

    status = 0
    for name, got in zip(output_names, results):
        got = np.asarray(got)
        if name not in expect_files:
            print(f"output {name}: {got.dtype}{list(got.shape)} (no reference)")
            continue
        ref = load_npy(expect_files[name], f"reference '{name}'")
        if ref.shape != got.shape:
            print(f"output {name}: FAIL shape {list(got.shape)} != reference {list(ref.shape)}")
            status = 1
            continue
        a = got.astype(np.float64)
        b = ref.astype(np.float64)
        if not (np.all(np.isfinite(a) == np.isfinite(b)) and np.array_equal(a[~np.isfinite(a)], b[~np.isfinite(b)])):
            print(f"output {name}: FAIL non-finite values differ")
            status = 1
            continue
        finite = np.isfinite(b)
        diff = float(np.max(np.abs(a[finite] - b[finite]))) if finite.any() else 0.0
        scale = max(1.0, float(np.max(np.abs(b[finite]))) if finite.any() else 1.0)
        tol = args.rtol * scale
        ok = diff <= tol
        print(f"output {name}: {'ok' if ok else 'FAIL'} max abs diff {diff:.3g} (tolerance {tol:.3g}) "
              f"{got.dtype}{list(got.shape)}")
        if not ok:
            status = 1
    sys.exit(status)


if __name__ == "__main__":
    main()
