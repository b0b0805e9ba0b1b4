#!/usr/bin/env python3
"""Ferry's ONNX exporter against the ONNX node tests: every case the conformance manifest lists
as passing is converted with `ferry convert model.onnx out.onnx [--opset N]` (ONNX -> IR -> ONNX),
checked with `onnx.checker.check_model(full_check=True)`, run in onnxruntime (graph
optimizations off) on its first test data set, and compared with the case's expected outputs
by the upstream rule (rtol 1e-3, atol 1e-7).

Usage: conformance_export.py [--ferry PATH] [--opset N] [--data DIR] [--only SUBSTRING]

Cases whose conversion fails are counted and named (mostly cases that feed a shape operand
as a graph input, which `ferry convert` cannot bind); a case that converts but fails the
checker or differs is a failure. A case onnxruntime cannot load, when it cannot load the case's
own model either (no kernel for Max on int16, say), passed the checker and is counted apart. Exit status 0 when none fails. `make test-onnx-export` runs it.

onnx 1.12 stores bfloat16 test tensors as uint16 tensors of their bits: they are fed to a
bfloat16 input as such. onnxruntime writes floats as text with 9 significant digits where numpy
(the node tests) and Ferry write the shortest digits that read back to the same value: string
outputs are compared as the float32 values their texts read back to when the expected texts are
numbers, exactly otherwise.
"""
import argparse
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

ROOT = pathlib.Path(__file__).resolve().parents[1]


def listed_cases():
    lines = (ROOT / "Tests" / "FerryONNXTests" / "conformance.txt").read_text().splitlines()
    section, ids = None, []
    for line in lines:
        if line in ("[pass]", "[fail]"):
            section = line
        elif section == "[pass]" and line.strip() and not line.startswith("#"):
            ids.append(line.strip())
    return ids


def check(ferry, opset, case_dir, out):
    command = [ferry, "convert", str(case_dir / "model.onnx"), str(out)] + (["--opset", str(opset)] if opset else [])
    converted = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if converted.returncode != 0:
        return "convert", converted.stderr.strip()
    try:
        model = onnx.load(str(out))
        onnx.checker.check_model(model, full_check=True)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            session = ort.InferenceSession(str(out), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001
            # onnxruntime lacks some kernels ONNX defines (Max on int16, Pow with a uint32
            # exponent): when it cannot load the case's own model either, the export is not at fault.
            try:
                ort.InferenceSession(str(case_dir / "model.onnx"), options, providers=["CPUExecutionProvider"])
            except Exception:  # noqa: BLE001
                return "no-ort", str(e).replace("\n", " ")[:200]
            raise
        source = onnx.load(str(case_dir / "model.onnx"))
        weights = {t.name for t in source.graph.initializer}
        names = [i.name for i in source.graph.input if i.name not in weights]
        data = case_dir / sorted(d for d in os.listdir(case_dir) if d.startswith("test_data_set_"))[0]
        types = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
        feeds = {}
        for i, name in enumerate(names):
            if name not in types:
                continue
            value = numpy_helper.to_array(onnx.load_tensor(str(data / f"input_{i}.pb")))
            if types[name] == onnx.TensorProto.BFLOAT16 and value.dtype == np.uint16:
                value = ort.OrtValue.ortvalue_from_numpy_with_onnx_type(value, onnx.TensorProto.BFLOAT16)
            feeds[name] = value
        for i, result in enumerate(session.run(None, feeds)):
            expected = numpy_helper.to_array(onnx.load_tensor(str(data / f"output_{i}.pb")))
            if expected.dtype == object:
                assert result.shape == expected.shape, f"shape {result.shape}, expected {expected.shape}"
                texts = [e.decode() if isinstance(e, bytes) else e for e in expected.ravel()]
                try:
                    numbers = np.array(texts, dtype=np.float32)
                except ValueError:
                    np.testing.assert_array_equal(result.ravel().astype(str), np.array(texts))
                else:
                    np.testing.assert_array_equal(result.astype(np.float32).ravel(), numbers)
                continue
            np.testing.assert_allclose(result, expected, rtol=1e-3, atol=1e-7)
    except Exception as e:  # noqa: BLE001 - any checker, runtime or comparison failure is the finding
        return "fail", str(e).replace("\n", " ")[:300]
    return "ok", ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ferry", default=str(ROOT / ".build" / "debug" / "ferry"))
    parser.add_argument("--opset", type=int)
    parser.add_argument("--data", default=os.environ.get("FERRY_ONNX_TESTDATA", "/usr/share/libonnx-testdata/data"))
    parser.add_argument("--only", action="append", default=[], metavar="SUBSTRING",
                        help="check only the listed cases whose id contains SUBSTRING (repeatable)")
    options = parser.parse_args()
    counts = {"ok": 0, "convert": 0, "fail": 0, "no-ort": 0}
    with tempfile.TemporaryDirectory() as work:
        for case in listed_cases():
            if options.only and not any(part in case for part in options.only):
                continue
            status, detail = check(options.ferry, options.opset, pathlib.Path(options.data) / case,
                                   pathlib.Path(work) / (case.replace("/", "_") + ".onnx"))
            counts[status] += 1
            if status != "ok":
                label = {"fail": "FAIL", "convert": "not converted", "no-ort": "onnxruntime cannot run the source model either"}[status]
                print(f"{label} {case}: {detail}", flush=True)
    print(f"{counts['ok']} cases re-exported by ferry pass the ONNX checker and match in onnxruntime; "
          f"{counts['fail']} fail; {counts['convert']} not converted; "
          f"{counts['no-ort']} checked but not run (onnxruntime has no kernel for the case's own model)")
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
