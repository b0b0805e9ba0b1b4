"""keras.applications models at the issue's 224x224 input and 1000 classes, for timing only.

Usage: .venv-fixtures/bin/python tools/make_bench_models.py [--size 224] [--out bench-models] [APP...]
Writes OUT/<app>/keras3.h5 (weights=None: Keras's own random initialization, default
BatchNormalization statistics) for MobileNetV2, ResNet50, VGG16 and EfficientNetB0 unless apps
are named. The recurrent models (named only: LSTM, GRU) are two stacked 256-unit layers over
100 steps of 64 features and a Dense of 10, the second layer bidirectional (GRU: reset_after,
Keras's default, which exports as linear_before_reset). No reference outputs: correctness is `make test-large`'s business (fixtures-large/,
96x96); these files only give `tools/bench_peers.py bench-models/*/keras3.h5` the input size
the runtime issue's onnxruntime figures were measured at. bench-models/ is not committed.
"""
import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402

APPS = ["MobileNetV2", "ResNet50", "VGG16", "EfficientNetB0"]
RECURRENT = ["LSTM", "GRU"]


def recurrent_model(kind):
    layer = getattr(keras.layers, kind)
    inputs = keras.Input((100, 64))
    x = layer(256, return_sequences=True)(inputs)
    x = keras.layers.Bidirectional(layer(256))(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x), name=kind.lower())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("apps", nargs="*", default=APPS)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--out", default="bench-models")
    args = parser.parse_args()
    for app in args.apps:
        keras.utils.set_random_seed(1234)
        if app in RECURRENT:
            model = recurrent_model(app)
        else:
            model = getattr(keras.applications, app)(weights=None, input_shape=(args.size, args.size, 3), classes=1000)
        folder = os.path.join(args.out, app.lower())
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "keras3.h5")
        model.save(path)
        print(f"{path}: {model.count_params():,} parameters, input {model.input_shape[1:]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
