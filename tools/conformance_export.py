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
        wanted = {i.name for i in model.graph.input}
        feeds = {name: numpy_helper.to_array(onnx.load_tensor(str(data / f"input_{i}.pb")))
                 for i, name in enumerate(names) if name in wanted}
        for i, result in enumerate(session.run(None, feeds)):
            expected = numpy_helper.to_array(onnx.load_tensor(str(data / f"output_{i}.pb")))
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
