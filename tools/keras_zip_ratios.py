#!/usr/bin/env python3
"""How far real `.keras` files expand: the figures behind Ferry's zip-bomb limit.

Keras 3 writes a `.keras` zip with its members stored (ratio 1:1), but a user or a tool may zip
it again with deflate, and weights that are mostly zeros (zero-initialised biases, an untrained
model, a model of zeros) then compress far. For each model below this prints the ratio of the
members Ferry extracts (config.json, metadata.json, model.weights.h5), summed, once as Keras
wrote them and once recompressed with deflate at level 9:

    .venv-fixtures/bin/python tools/keras_zip_ratios.py [--apps]

Models: every committed `fixtures/keras/*/keras3.keras`; Keras-built MLPs and CNNs with Keras's
default initialisers (random kernels, zero biases) and the same with every weight set to zero,
at a few sizes; with --apps, MobileNetV2, EfficientNetB0 and ResNet50 with weights=None (random
kernels, BatchNorm gammas of one and betas, means of zero).
"""
import argparse
import glob
import io
import os
import pathlib
import sys
import tempfile
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
READ = ("config.json", "metadata.json", "model.weights.h5")


def ratios(path):
    """(bytes extracted, ratio as written, ratio recompressed with deflate 9)."""
    with zipfile.ZipFile(path) as z:
        infos = [z.getinfo(n) for n in READ if n in z.namelist()]
        size = sum(i.file_size for i in infos)
        stored = sum(i.compress_size for i in infos)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as out:
            for i in infos:
                out.writestr(i.filename, z.read(i.filename))
        buffer.seek(0)
        with zipfile.ZipFile(buffer) as again:
            deflated = sum(again.getinfo(n).compress_size for n in READ if n in again.namelist())
    return size, size / stored, size / deflated


def built_models(apps):
    import keras
    import numpy as np

    def mlp(width):
        return keras.Sequential([keras.Input((width,)), keras.layers.Dense(width, activation="relu"),
                                 keras.layers.Dense(width), keras.layers.Dense(10)])

    def cnn(channels):
        return keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(channels, 3),
                                 keras.layers.BatchNormalization(), keras.layers.Conv2D(channels, 3),
                                 keras.layers.BatchNormalization(), keras.layers.GlobalAveragePooling2D(),
                                 keras.layers.Dense(10)])

    models = [("mlp 64", lambda: mlp(64)), ("mlp 1024", lambda: mlp(1024)), ("mlp 4096", lambda: mlp(4096)),
              ("cnn 32", lambda: cnn(32)), ("cnn 512", lambda: cnn(512))]
    if apps:
        models += [("MobileNetV2", lambda: keras.applications.MobileNetV2(weights=None)),
                   ("EfficientNetB0", lambda: keras.applications.EfficientNetB0(weights=None)),
                   ("ResNet50", lambda: keras.applications.ResNet50(weights=None))]
    for name, make in models:
        model = make()
        yield name + " (Keras's initialisers)", model
        model.set_weights([np.zeros_like(w) for w in model.get_weights()])
        yield name + " (all weights zero)", model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", action="store_true", help="also keras.applications models (minutes)")
    args = parser.parse_args()
    print(f"{'model':48} {'extracted':>12} {'as written':>10} {'deflate 9':>10}")
    rows = []
    for path in sorted(glob.glob(str(ROOT / "fixtures/keras/*/keras3.keras"))):
        rows.append((os.path.relpath(path, ROOT),) + ratios(path))
        print(f"{rows[-1][0]:48} {rows[-1][1]:12,} {rows[-1][2]:10.2f} {rows[-1][3]:10.2f}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for name, model in built_models(args.apps):
            path = os.path.join(folder, "m.keras")
            model.save(path)
            rows.append((name,) + ratios(path))
            print(f"{rows[-1][0]:48} {rows[-1][1]:12,} {rows[-1][2]:10.2f} {rows[-1][3]:10.2f}", flush=True)
    fixtures = [r for r in rows if r[0].startswith("fixtures/")]
    print(f"committed fixtures: deflate 9 ratios {min(r[3] for r in fixtures):.2f} to {max(r[3] for r in fixtures):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
