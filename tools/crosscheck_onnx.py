#!/usr/bin/env python3
"""Every committed fixture through ONNX: converted with `ferry convert`, checked with
`onnx.checker.check_model(full_check=True)`, run in onnxruntime, compared with the framework's
reference output.

Usage: crosscheck_onnx.py [--ferry PATH] [--opset N] [--fixtures DIR ...]

DIR defaults to fixtures/keras and fixtures/caffe; each `*/manifest.json` with expect "ok" is a
case (a Keras manifest lists variants: the Keras 2 and Keras 3 files; a Caffe one is
net.prototxt + net.caffemodel). A case passes when the checker accepts the file, its inputs and
outputs keep the source model's names with an open batch dimension, and every output agrees with
the reference within |a - b| <= 1e-4 * max(1, max|ref|). onnxruntime runs with its graph
optimizations off, so that the file's semantics are checked rather than onnxruntime's fusions.
Prints one line per case; exit status 0 when all pass, 1 otherwise. `make test` runs it.
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOLERANCE = 1e-4
# Fixtures with a layer ONNX has no operator for: conversion must refuse, naming the layer.
ONNX_UNEXPRESSIBLE = {"ssd_detection": "detection_out (DetectionOutput)",
                      "ssd_detection_options": "keep_all (DetectionOutput)",
                      "upsample_unpool": "pool1 (Pooling)"}


def cases(directories):
    """(label, model arguments, model dir, inputs, outputs) of every fixture expected to convert."""
    for directory in directories:
        for manifest_path in sorted(pathlib.Path(directory).glob("*/manifest.json")):
            manifest = json.loads(manifest_path.read_text())
            if manifest.get("expect", "ok") != "ok":
                continue
            model_dir = manifest_path.parent
            if "variants" in manifest:  # Keras: one case per saved file
                for v in manifest["variants"]:
                    args = [model_dir / v["file"]] + (["--weights", model_dir / v["weights"]] if "weights" in v else [])
                    yield f"keras/{manifest['name']}/{v['file']}", args, model_dir, v["inputs"], v["outputs"]
            else:  # Caffe
                yield f"caffe/{manifest['name']}", [model_dir / "net.prototxt"], model_dir, manifest["inputs"], manifest["outputs"]


def check(ferry, opset, args, model_dir, inputs, outputs, work):
    """None when the case passes, else what went wrong."""
    path = work / "model.onnx"
    command = [ferry, "convert", *map(str, args), str(path)] + (["--opset", str(opset)] if opset else [])
    converted = subprocess.run(command, capture_output=True, text=True, timeout=600)
    refusal = ONNX_UNEXPRESSIBLE.get(model_dir.name)
    if refusal is not None:  # ONNX cannot say this layer: the refusal must name it, with no file left
        if converted.returncode == 2 and refusal in converted.stderr and not path.exists():
            return None
        return f"expected exit 2 naming {refusal}, got {converted.returncode}: {converted.stderr.strip()}"
    if converted.returncode != 0:
        return f"ferry convert failed ({converted.returncode}): {converted.stderr.strip()}"
    model = onnx.load(str(path))
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # noqa: BLE001 - any checker failure is the finding
        return f"ONNX checker: {e}"
    if [i["name"] for i in inputs] != [i.name for i in model.graph.input]:
        return f"inputs {[i.name for i in model.graph.input]}, source has {[i['name'] for i in inputs]}"
    if [o["name"] for o in outputs] != [o.name for o in model.graph.output]:
        return f"outputs {[o.name for o in model.graph.output]}, source has {[o['name'] for o in outputs]}"
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = {}
    # A Keras model with stateful layers fixes its batch size; the others leave it open.
    manifest = model_dir / "manifest.json"
    fixed_batch = json.loads(manifest.read_text()).get("fixed_batch") if manifest.exists() else None
    for graph_input, inp in zip(model.graph.input, inputs):
        batch = graph_input.type.tensor_type.shape.dim[0]
        if fixed_batch:
            if batch.dim_value != fixed_batch:
                return f"input '{inp['name']}' should keep the source's fixed batch size {fixed_batch}"
        elif not batch.dim_param:
            return f"input '{inp['name']}' has a fixed batch dimension; the source left it open"
        feeds[inp["name"]] = np.load(model_dir / inp["npy"])
    results = session.run([o["name"] for o in outputs], feeds)
    for out, result in zip(outputs, results):
        reference = np.load(model_dir / out["npy"])
        if result.shape != reference.shape:
            return f"output '{out['name']}' shape {result.shape}, reference {reference.shape}"
        if reference.size == 0:
            continue
        diff = float(np.max(np.abs(result.astype(np.float64) - reference)))
        bound = TOLERANCE * max(1.0, float(np.max(np.abs(reference))))
        if not diff <= bound:
            return f"output '{out['name']}': max |diff| {diff:.3g} exceeds {bound:.3g}"
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ferry", default=str(ROOT / ".build" / "debug" / "ferry"))
    parser.add_argument("--opset", type=int, help="ONNX opset to write (ferry's default: 17)")
    parser.add_argument("--fixtures", nargs="+", default=[ROOT / "fixtures" / "keras", ROOT / "fixtures" / "caffe"])
    options = parser.parse_args()
    failures = total = 0
    for label, args, model_dir, inputs, outputs in cases(options.fixtures):
        total += 1
        with tempfile.TemporaryDirectory() as work:
            problem = check(options.ferry, options.opset, args, model_dir, inputs, outputs, pathlib.Path(work))
        print(f"{'ok  ' if problem is None else 'FAIL'} {label}" + ("" if problem is None else f": {problem}"), flush=True)
        failures += problem is not None
    print(f"{total - failures} / {total} fixtures convert, pass the ONNX checker and match their reference in onnxruntime")
    return 1 if failures or total == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
