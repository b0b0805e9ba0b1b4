"""Converts a Keras model to ONNX with tf2onnx, the peer Ferry's exporter is compared with.

Usage (in .venv-tf2onnx, made by `tools/setup.sh --tf2onnx`):
    .venv-tf2onnx/bin/python tools/tf2onnx_convert.py MODEL.h5|MODEL.keras OUT.onnx [--opset 17]
Keras 3 loads the model (.h5 from Keras 2 or 3, or .keras); tf2onnx converts the inference
call traced as a tf.function with an open batch dimension, as its from_keras does for Keras 2.
Prints the node count.
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import onnx  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402


def freeze_normalization_statistics(model):
    """Keras 3's Normalization keeps its mean and variance as eager tensors computed from its
    weights; a traced function captures them as placeholders, which tf2onnx leaves as extra graph
    inputs. Held in variables, they are frozen into initializers like every other weight."""
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.Normalization) and getattr(layer, "mean", None) is not None:
            layer.mean = tf.Variable(layer.mean, trainable=False)
            layer.variance = tf.Variable(layer.variance, trainable=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("output")
    parser.add_argument("--opset", type=int, default=17)
    args = parser.parse_args()
    model = keras.saving.load_model(args.model, compile=False)
    freeze_normalization_statistics(model)
    specs = [tf.TensorSpec((None,) + tuple(x.shape[1:]), tf.float32, name=x.name) for x in model.inputs]

    @tf.function(input_signature=specs)
    def infer(*xs):
        return model(list(xs) if len(xs) > 1 else xs[0], training=False)

    proto, _ = tf2onnx.convert.from_function(infer, input_signature=specs, opset=args.opset)
    onnx.save(proto, args.output)
    print(f"{args.output}: {len(proto.graph.node)} nodes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
