#!/usr/bin/env python3
"""How far float32 rounding alone moves a Keras model's outputs, and where Ferry stands.

Run from the repository root with the fixture venv (TensorFlow, tf_keras, Keras 3):

    .venv-fixtures/bin/python tools/keras_float64.py fixtures-large/efficientnetv2b2 keras3.h5
    .venv-fixtures/bin/python tools/keras_float64.py DIR FILE --ferry .build/release/ferry [--layers]
    .venv-fixtures/bin/python tools/keras_float64.py DIR FILE --onednn

The model is reloaded by the Keras that wrote it, and a float64 twin is built from the same
architecture (every dtype float64) with the same weights. The twin's outputs stand for the
exact function the file describes: Keras's float32 outputs (the fixture's reference) and
Ferry's are both measured against them, |a - b| / max(1, max|f64|) as the project's
agreement rule scales it. With --layers, Ferry's value for every Keras layer it keeps by
name (an ONNX export with those values as extra outputs, run by `ferry run`) is compared
with the float64 twin's and with Keras float32's, so a layer where Ferry departs from
float32 noise stands out.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.pop("TF_USE_LEGACY_KERAS", None)

import numpy as np  # noqa: E402


def framework_for(path):
    """The Keras that wrote the file: tf_keras for 2.x, Keras 3 otherwise."""
    if path.endswith(".h5"):
        import h5py
        with h5py.File(path, "r") as f:
            version = f.attrs.get("keras_version", b"3")
        version = version.decode() if isinstance(version, bytes) else str(version)
    else:
        version = "3"
    if version.startswith("2"):
        import tf_keras
        return tf_keras
    import keras
    return keras


def application_layers(k):
    """Layer classes keras.applications defines for itself (ConvNeXt's LayerScale,
    InceptionResNetV2's CustomScaleLayer), which no Keras registers: reloading a file that uses
    them needs them named. They are the framework's own classes, never code from a file."""
    import importlib
    import pkgutil
    package = importlib.import_module(k.__name__ + ".src.applications")
    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.endswith("_test"):
            continue
        module = importlib.import_module(package.__name__ + "." + info.name)
        for name, value in vars(module).items():
            if isinstance(value, type) and issubclass(value, k.layers.Layer) and value.__module__ == module.__name__:
                found[name] = value
    return found


def float64_twin(k, model):
    """The same architecture with every dtype float64, holding the model's weights."""
    text = model.to_json().replace('"float32"', '"float64"')
    twin = k.models.model_from_json(text, custom_objects=application_layers(k))
    twin.set_weights([np.asarray(w, dtype=np.float64) for w in model.get_weights()])
    return twin


def float64_outputs(k, model, inputs):
    """The float64 twin's outputs on the given float32 inputs (widened, not re-drawn)."""
    twin = float64_twin(k, model)
    xs = [np.asarray(x, dtype=np.float64) for x in inputs]
    out = twin.predict(xs[0] if len(xs) == 1 else xs, verbose=0)
    return [np.asarray(o, dtype=np.float64) for o in (out if isinstance(out, list) else [out])]


def scaled(a, truth):
    """The largest |a - truth| over max(1, max|truth|)."""
    return float(np.max(np.abs(a.astype(np.float64) - truth)) / max(1.0, float(np.max(np.abs(truth)))))


def run_ferry(ferry, model_path, inputs, out_dir):
    args = [ferry, "run", model_path, "--output-dir", out_dir, "--force"]
    for name, path in inputs:
        args += ["--input", "%s=%s" % (name, path)]
    subprocess.run(args, check=True, capture_output=True, text=True)


def ferry_layer_values(ferry, model_path, layer_names, inputs, work):
    """Ferry's value for each Keras layer that keeps its name in Ferry's ONNX export (the last
    node named `<layer>/...`), NCHW values turned back to Keras's channels-last order."""
    import onnx
    onnx_path = os.path.join(work, "model.onnx")
    subprocess.run([ferry, "convert", "--force", "--no-optimize", model_path, onnx_path],
                   check=True, capture_output=True, text=True)
    model = onnx.load(onnx_path)
    last = {}
    for node in model.graph.node:
        layer = node.name.split("/")[0]
        if layer in layer_names and node.output:
            last[layer] = node.output[0]
    existing = {o.name for o in model.graph.output}
    for value in last.values():
        if value not in existing:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(value))
            existing.add(value)
    wide = os.path.join(work, "wide.onnx")
    onnx.save(model, wide)
    out_dir = os.path.join(work, "values")
    run_ferry(ferry, wide, inputs, out_dir)
    values = {}
    for layer, value in last.items():
        file = os.path.join(out_dir, "".join(c if c.isalnum() or c in "._-" else "_" for c in value) + ".npy")
        if os.path.exists(file):
            values[layer] = np.load(file)
    return values


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fixture", help="a fixture directory with manifest.json")
    ap.add_argument("file", help="the model file in it (keras2.h5, keras3.h5, keras3.keras)")
    ap.add_argument("--ferry", help="a ferry binary: also measure `ferry run`")
    ap.add_argument("--layers", action="store_true", help="with --ferry: compare every layer")
    ap.add_argument("--onednn", action="store_true",
                    help="run Keras float32 with TensorFlow's oneDNN kernels (TF_ENABLE_ONEDNN_OPTS=1, another valid "
                    "float32 order of the same sums; the references use 0): how far float32 alone moves the result")
    ap.add_argument("--save", action="store_true",
                    help="write the float64 outputs next to the references (<stem>_output_<i>.f64.npy) "
                    "and name them in manifest.json (\"float64\" of each output)")
    args = ap.parse_args()

    if args.onednn:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"  # read when TensorFlow is imported, below
    manifest = json.load(open(os.path.join(args.fixture, "manifest.json")))
    variant = next(v for v in manifest["variants"] if v["file"] == args.file)
    path = os.path.join(args.fixture, args.file)
    k = framework_for(path)
    model = k.models.load_model(path, compile=False, custom_objects=application_layers(k))
    xs = [np.load(os.path.join(args.fixture, i["npy"])) for i in variant["inputs"]]
    x32 = xs[0] if len(xs) == 1 else xs
    out32 = model.predict(x32, verbose=0)
    out32 = out32 if isinstance(out32, list) else [out32]
    out64 = float64_outputs(k, model, xs)
    refs = [np.load(os.path.join(args.fixture, o["npy"])) for o in variant["outputs"]]

    print("%s/%s: max|f64| %s" % (manifest["name"], args.file, ", ".join("%.4g" % np.max(np.abs(o)) for o in out64)))
    for o, ref, a, b in zip(variant["outputs"], refs, out32, out64):
        print("  %s: reference vs this Keras float32 run %.3g; Keras float32 vs float64 %.3g; this run vs float64 %.3g"
              % (o["name"], scaled(ref, a.astype(np.float64)), scaled(ref, b), scaled(a, b)))
        if args.save:
            o["float64"] = o["npy"][:-len(".npy")] + ".f64.npy"
            np.save(os.path.join(args.fixture, o["float64"]), b)
    if args.save:
        with open(os.path.join(args.fixture, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")

    if not args.ferry:
        return 0
    with tempfile.TemporaryDirectory() as work:
        inputs = [(i["name"], os.path.join(args.fixture, i["npy"])) for i in variant["inputs"]]
        run_ferry(args.ferry, path, inputs, os.path.join(work, "run"))
        for o, ref, b in zip(variant["outputs"], refs, out64):
            name = "".join(c if c.isalnum() or c in "._-" else "_" for c in o["name"])
            got = np.load(os.path.join(work, "run", name + ".npy"))
            print("  %s: ferry vs Keras float32 %.3g; ferry vs float64 %.3g"
                  % (o["name"], scaled(got, ref.astype(np.float64)), scaled(got, b)))
        if not args.layers:
            return 0
        names = [l.name for l in model.layers]
        values = ferry_layer_values(args.ferry, path, set(names), inputs, work)
        probe = [l for l in names if l in values]
        m32 = k.Model(model.inputs, [model.get_layer(l).output for l in probe])
        twin = float64_twin(k, model)
        m64 = k.Model(twin.inputs, [twin.get_layer(l).output for l in probe])
        v32 = m32.predict(x32, verbose=0)
        v64 = m64.predict(xs[0].astype(np.float64) if len(xs) == 1 else [x.astype(np.float64) for x in xs], verbose=0)
        print("  %-36s %10s %12s %12s %8s" % ("layer", "max|f64|", "keras32-f64", "ferry-f64", "ratio"))
        for l, a, b in zip(probe, v32, v64):
            f = values[l]
            if f.ndim == 4 and f.shape != b.shape:
                f = f.transpose(0, 2, 3, 1)
            if f.shape != b.shape:
                continue
            e32, ef = scaled(a, b), scaled(f, b)
            print("  %-36s %10.4g %12.3g %12.3g %8.2f" % (l, np.max(np.abs(b)), e32, ef, ef / max(e32, 1e-30)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
