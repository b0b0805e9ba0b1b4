#!/usr/bin/env python3
"""Keras export checked in real Keras (run with .venv-fixtures: TensorFlow, tf_keras 2.21, Keras 3.15;
`make test-export-keras`). Every fixture Ferry can write as Keras (the lists in
Tests/crosscheck/test_keras_export.py) is converted with the `ferry` binary to .h5 and .keras, loaded
with tf_keras.models.load_model (.h5) and keras.models.load_model (both), run with
predict(), and compared with the source's reference outputs (Keras fixtures: Keras's own predict();
Caffe fixtures: OpenCV's outputs, NCHW inputs and outputs transposed to the Keras model's NHWC).
A Keras fixture's .h5 loaded in tf_keras is also compared with the source loaded in tf_keras:
same layers (nested ones too), inbound nodes and weights bit for bit (but for ROUND_TRIP_CHANGES).
Keras -> ONNX -> Keras: each Keras fixture Ferry converts through its own ONNX file (all but
KERAS_VIA_ONNX_LACKS) is loaded in tf_keras and run against the source's references too.
Prints one line per file and framework; exits 1 when any differs or fails to load."""
import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "crosscheck"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from export_fixtures import (CAFFE_TO_KERAS, KERAS3_CANNOT_READ_KERAS2, KERAS3_READS_KERAS2_OTHERWISE,  # noqa: E402
                             KERAS3_ONLY, KERAS_TO_KERAS, KERAS_VIA_ONNX_LACKS, ONNX_IMPORT_LACKS, VIA_ONNX_KERAS2_MEANING, NOT_IN_REAL_KERAS, ROUND_TRIP_CHANGES, ZIP_FROM_KERAS3,
                             ZIP_UNEXPRESSIBLE)


def load_with(framework):
    if framework == "tf_keras":
        import tf_keras
        return tf_keras.models.load_model
    import keras
    return keras.models.load_model


def convert(ferry, source, destination):
    result = subprocess.run([ferry, "convert", "--force", str(source), str(destination)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip())
    return {m.group(2): m.group(1) for m in re.finditer(r"^layout: (input|output) (\S+): channels-first", result.stdout, re.M)}


def same_model(original, written):
    """Keras -> Ferry -> Keras in real Keras: the loaded models have the same layers (names,
    classes, recursing into nested models), the same inbound nodes in get_config(), and the same
    weights bit for bit. Returns a list of differences."""
    def layers(model, prefix=""):
        for layer in model.layers:
            yield prefix + layer.name, type(layer).__name__, layer
            if hasattr(layer, "layers"):
                yield from layers(layer, prefix + layer.name + "/")

    def inbound(model):
        config = model.get_config()
        return [(l["name"], l.get("inbound_nodes")) for l in config.get("layers", []) if "inbound_nodes" in l]

    a, b = list(layers(original)), list(layers(written))
    problems = []
    if [(n, c) for n, c, _ in a] != [(n, c) for n, c, _ in b]:
        problems.append(f"layers {[(n, c) for n, c, _ in a]} vs {[(n, c) for n, c, _ in b]}")
    elif inbound(original) != inbound(written):
        problems.append("inbound nodes differ")
    else:
        for (name, _, la), (_, _, lb) in zip(a, b):
            wa, wb = la.get_weights(), lb.get_weights()
            if len(wa) != len(wb) or any(x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes()
                                         for x, y in zip(wa, wb)):
                problems.append(f"{name}: weights differ")
    return problems


def cases():
    for name in KERAS_TO_KERAS:
        if name in NOT_IN_REAL_KERAS:
            continue
        d = ROOT / "fixtures" / "keras" / name
        manifest = json.loads((d / "manifest.json").read_text())
        by_suffix = {}
        for suffix in [".h5", ".keras"]:
            wanted = "keras3.keras" if suffix == ".keras" and name in ZIP_FROM_KERAS3 else "keras2.h5"
            v = next(v for v in manifest["variants"] if v["file"] == wanted)
            by_suffix[suffix] = (d / v["file"], [(i["name"], np.load(d / i["npy"])) for i in v["inputs"]],
                                 [(o["name"], np.load(d / o["npy"])) for o in v["outputs"]])
        yield f"keras/{name}", by_suffix
    for name in KERAS3_ONLY:
        d = ROOT / "fixtures" / "keras" / name
        manifest = json.loads((d / "manifest.json").read_text())
        by_suffix = {}
        for suffix, wanted in [(".h5", "keras3.h5"), (".keras", "keras3.keras")]:
            v = next(v for v in manifest["variants"] if v["file"] == wanted)
            by_suffix[suffix] = (d / v["file"], [(i["name"], np.load(d / i["npy"])) for i in v["inputs"]],
                                 [(o["name"], np.load(d / o["npy"])) for o in v["outputs"]])
        yield f"keras/{name}", by_suffix
    for name in CAFFE_TO_KERAS:
        d = ROOT / "fixtures" / "caffe" / name
        manifest = json.loads((d / "manifest.json").read_text())
        case = (d / "net.prototxt", [(i["name"], np.load(d / i["npy"])) for i in manifest["inputs"]],
                [(o["name"], np.load(d / o["npy"])) for o in manifest["outputs"]])
        yield f"caffe/{name}", {".h5": case, ".keras": case}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ferry", default=os.environ.get("FERRY", str(ROOT / ".build" / "debug" / "ferry")))
    parser.add_argument("--frameworks", default="tf_keras,keras")
    parser.add_argument("--only", help="comma-separated fixture labels (keras/NAME, caffe/NAME) to check; default all")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for label, by_suffix in cases():
            if only is not None and label not in only:
                continue
            for suffix in [".h5", ".keras"]:
                source, inputs, outputs = by_suffix[suffix]
                target = pathlib.Path(tmp) / (label.replace("/", "_") + suffix)
                if suffix == ".keras" and label.split("/", 1)[1] in ZIP_UNEXPRESSIBLE:
                    # Refused as a .keras on purpose: the error must say why (and no file is left).
                    reason = ZIP_UNEXPRESSIBLE[label.split("/", 1)[1]]
                    try:
                        convert(args.ferry, source, target)
                        print(f"FAIL {label}{suffix}: written, but listed in ZIP_UNEXPRESSIBLE")
                        failures += 1
                    except RuntimeError as e:
                        ok = reason in str(e) and not target.exists()
                        print(f"{'ok  ' if ok else 'FAIL'} {label}{suffix}: refused ({reason})")
                        failures += 0 if ok else 1
                    continue
                try:
                    changed = convert(args.ferry, source, target)
                except RuntimeError as e:
                    print(f"FAIL {label}{suffix}: convert: {e}")
                    failures += 1
                    continue
                feeds = [np.moveaxis(a, 1, -1) if changed.get(n) == "input" else a for n, a in inputs]
                # tf_keras reads .h5 only; Keras 3 reads both.
                for framework in [f for f in args.frameworks.split(",") if suffix == ".h5" or f == "keras"]:
                    # The lists below name Keras fixtures (a Caffe fixture may have the same name).
                    name = label.split("/", 1)[1] if label.startswith("keras/") else None
                    if framework == "tf_keras" and name in KERAS3_ONLY:
                        print(f"skip {label}{suffix} in tf_keras: {KERAS3_ONLY[name]}")
                        continue
                    if framework == "keras" and suffix == ".h5" and name in KERAS3_CANNOT_READ_KERAS2:
                        # Keras 3 cannot read (or run) this Keras 2 layout: check that it still cannot
                        # read and run tf_keras's own file either (else Ferry's should too).
                        try:
                            load_with("keras")(str(source), compile=False).predict(
                                feeds if len(feeds) > 1 else feeds[0], verbose=0)
                            print(f"FAIL {label}{suffix} in keras: Keras 3 now reads and runs tf_keras's file; remove it "
                                  "from KERAS3_CANNOT_READ_KERAS2")
                            failures += 1
                        except Exception as e:  # noqa: BLE001 - the expected failure
                            print(f"skip {label}{suffix} in keras: Keras 3 cannot read or run tf_keras's own file either "
                                  f"({KERAS3_CANNOT_READ_KERAS2[name]}; {type(e).__name__})")
                        continue
                    try:
                        model = load_with(framework)(str(target), compile=False)
                        if label.startswith("keras/") and suffix == ".h5" and framework == "tf_keras" \
                                and name not in ROUND_TRIP_CHANGES:
                            problems = same_model(load_with(framework)(str(source), compile=False), model)
                            assert not problems, "; ".join(problems)
                            structure = ", same layers, inbound nodes and weights as the source"
                        else:
                            structure = ""
                        results = model.predict(feeds if len(feeds) > 1 else feeds[0], verbose=0)
                        if not isinstance(results, (list, tuple)):
                            results = [results]
                        if framework == "keras" and suffix == ".h5" and name in KERAS3_READS_KERAS2_OTHERWISE:
                            # Compared with tf_keras's own file in Keras 3, which must still
                            # differ from the reference (else the entry is stale).
                            own = load_with("keras")(str(source), compile=False).predict(
                                feeds if len(feeds) > 1 else feeds[0], verbose=0)
                            own = own if isinstance(own, (list, tuple)) else [own]
                            assert any(np.max(np.abs(np.asarray(o) - ref)) > 1e-4 * max(1.0, float(np.max(np.abs(ref))))
                                       for o, (_, ref) in zip(own, outputs)), \
                                "Keras 3 now reads tf_keras's file as the reference: remove it from KERAS3_READS_KERAS2_OTHERWISE"
                            outputs_here = [(n, np.asarray(o)) for o, (n, _) in zip(own, outputs)]
                            structure = (f", as tf_keras's own file in Keras 3 ({KERAS3_READS_KERAS2_OTHERWISE[name]}; "
                                         "that file differs from the reference)")
                        else:
                            outputs_here = outputs
                        worst = 0.0
                        for (name, ref), res in zip(outputs_here, results):
                            res = np.asarray(res)
                            if changed.get(name) == "output":
                                res = np.moveaxis(res, -1, 1)
                            assert res.shape == ref.shape, f"{name}: shape {res.shape} vs {ref.shape}"
                            diff = float(np.max(np.abs(res.astype(np.float64) - ref))) if ref.size else 0.0
                            bound = 1e-4 * max(1.0, float(np.max(np.abs(ref)))) if ref.size else 0.0
                            assert diff <= bound, f"{name}: max |diff| {diff:.3g} > {bound:.3g}"
                            worst = max(worst, diff)
                        print(f"ok   {label}{suffix} in {framework}: max |diff| {worst:.2g}{structure}")
                    except Exception as e:  # noqa: BLE001 - every failure is reported, then counted
                        print(f"FAIL {label}{suffix} in {framework}: {type(e).__name__}: {str(e).splitlines()[0][:300]}")
                        failures += 1
        # Keras -> ONNX -> Keras: the .h5 Ferry writes from its own ONNX file, in tf_keras (the source
        # as test_keras_export.py's test_keras_via_onnx_reads_back takes it: keras3.h5, else keras2.h5).
        for name in KERAS_TO_KERAS:
            label = f"keras/{name}"
            if (only is not None and label not in only) or name in KERAS_VIA_ONNX_LACKS or name in ONNX_IMPORT_LACKS:
                continue
            d = ROOT / "fixtures" / "keras" / name
            manifest = json.loads((d / "manifest.json").read_text())
            v = next((v for v in manifest["variants"] if v["file"] == "keras3.h5"),
                     next(v for v in manifest["variants"] if v["file"] == "keras2.h5"))
            onnx_file, target = pathlib.Path(tmp) / f"{name}_via.onnx", pathlib.Path(tmp) / f"{name}_via.h5"
            try:
                convert(args.ferry, d / v["file"], onnx_file)
                convert(args.ferry, onnx_file, target)
                model = load_with("tf_keras")(str(target), compile=False)
                feeds = [np.load(d / i["npy"]) for i in v["inputs"]]
                results = model.predict(feeds if len(feeds) > 1 else feeds[0], verbose=0)
                results = results if isinstance(results, (list, tuple)) else [results]
                if name in VIA_ONNX_KERAS2_MEANING:  # the .h5 means tf_keras's layers: its references
                    v = next(v for v in manifest["variants"] if v["file"] == "keras2.h5")
                worst = 0.0
                for o, res in zip(v["outputs"], results):
                    ref, res = np.load(d / o["npy"]), np.asarray(res)
                    assert res.shape == ref.shape, f"{o['name']}: shape {res.shape} vs {ref.shape}"
                    diff = float(np.max(np.abs(res.astype(np.float64) - ref))) if ref.size else 0.0
                    assert diff <= 1e-4 * max(1.0, float(np.max(np.abs(ref)))) if ref.size else True, f"{o['name']}: max |diff| {diff:.3g}"
                    worst = max(worst, diff)
                print(f"ok   {label} via ONNX .h5 in tf_keras: max |diff| {worst:.2g}")
            except Exception as e:  # noqa: BLE001 - every failure is reported, then counted
                print(f"FAIL {label} via ONNX .h5 in tf_keras: {type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")
                failures += 1
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
