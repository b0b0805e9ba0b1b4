#!/usr/bin/env python3
"""Generate the Keras HDF5 fixtures under fixtures/keras/.

Run from the repository root (needs the fixture venv, see
tools/requirements-fixtures.txt):

    .venv-fixtures/bin/python tools/make_fixtures.py            # all models
    .venv-fixtures/bin/python tools/make_fixtures.py --only mlp  # one model
    .venv-fixtures/bin/python tools/make_fixtures.py --inspect   # dump .h5 layouts

Every model is built twice with the same architecture, the same explicit
layer names and the same weights: once with Keras 2 (``tf_keras``) and once
with Keras 3 (``keras``, TensorFlow backend). Both are saved as legacy HDF5
with ``model.save(path)``. Weights are drawn with numpy from a seed derived
from the model and layer name (kernels ~ N(0, 1/sqrt(fan_in)), nonzero
biases) and installed with ``set_weights``, so both variants compute the
same function.

Layout, per model::

    fixtures/keras/<model>/
        keras2.h5, keras3.h5          model files (tf_keras / keras 3)
        input_0.npy [, input_1.npy]   float32, batch 2, one per model input
        keras2_output_<i>.npy         tf_keras predict() on the RELOADED keras2.h5
        keras3_output_<i>.npy         keras 3 predict() on the RELOADED keras3.h5
        manifest.json

manifest.json::

    {"name": ..., "description": ..., "expect": "ok" | "error",
     ["error_layer": <layer name>,]
     "variants": [{"file": "keras2.h5", "writer": "tf_keras 2.21.0",
                   "inputs":  [{"name": <InputLayer name>, "npy": "input_0.npy"}],
                   "outputs": [{"name": <output layer name>, "npy": "keras2_output_0.npy"}]},
                  {"file": "keras3.h5", "writer": "keras 3.15.1", ...}]}

Inputs are listed in model input order, outputs in ``model.outputs`` order.
Error fixtures ("expect": "error") contain a layer the importer must reject;
their outputs are written when the framework can reload its own file, but
are not required. The script is deterministic and overwrites its outputs.
"""

import argparse
import json
import os
import shutil
import sys
import zlib

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.pop("TF_USE_LEGACY_KERAS", None)

import logging  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

from keras_float64 import application_layers, float64_outputs  # noqa: E402  (tools/, beside this script)

warnings.filterwarnings("ignore", message=".*HDF5 file.*")
logging.getLogger("tensorflow").setLevel(logging.ERROR)
logging.getLogger("absl").setLevel(logging.ERROR)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "fixtures", "keras")
BATCH = 2


def _seed(*parts):
    return zlib.crc32("/".join(parts).encode("utf-8"))


# ---------------------------------------------------------------------------
# Model definitions. Each builder gets the framework module (tf_keras or
# keras); both expose .layers, .Input, .Model and .Sequential.
# ---------------------------------------------------------------------------

def build_mlp(k):
    L = k.layers
    return k.Sequential([
        k.Input(shape=(16,), name="features"),
        L.Dense(32, activation="relu", name="dense1"),
        L.Dropout(0.5, name="dropout"),
        L.Dense(24, activation="tanh", name="dense2"),
        L.Dense(10, activation="softmax", name="logits"),
    ], name="mlp")


def build_cnn_flatten(k):
    L = k.layers
    return k.Sequential([
        k.Input(shape=(20, 28, 3), name="image"),
        L.Conv2D(8, 3, padding="valid", activation="relu", name="conv1"),
        L.MaxPooling2D(2, name="pool1"),
        L.Conv2D(16, 3, padding="same", strides=2, activation="tanh", name="conv2"),
        L.Flatten(name="flatten"),
        L.Dense(10, name="dense"),
        L.Activation("softmax", name="softmax"),
    ], name="cnn_flatten")


def build_cnn_gap(k):
    L = k.layers
    x_in = k.Input(shape=(31, 33, 3), name="image")
    x = L.Conv2D(12, 5, strides=2, padding="same", use_bias=False,
                 activation="sigmoid", name="conv1")(x_in)
    x = L.AveragePooling2D(3, strides=2, padding="same", name="avgpool")(x)
    x = L.Conv2D(10, 3, padding="valid", name="conv2")(x)
    x = L.Activation("relu", name="relu")(x)
    x = L.MaxPooling2D(3, strides=2, padding="same", name="maxpool")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    y = L.Dense(5, activation="linear", name="head")(x)
    return k.Model(x_in, y, name="cnn_gap")


def build_conv_out(k):
    L = k.layers
    x_in = k.Input(shape=(12, 10, 4), name="fmap_in")
    x = L.Conv2D(6, 3, strides=1, padding="same", activation="relu", name="conv1")(x_in)
    x = L.Conv2D(7, (3, 1), strides=(2, 1), padding="valid", activation="linear",
                 name="conv2")(x)
    y = L.MaxPooling2D((2, 2), strides=(1, 2), padding="valid", name="pool")(x)
    return k.Model(x_in, y, name="conv_out")


def build_two_outputs(k):
    L = k.layers
    x_in = k.Input(shape=(8, 8, 2), name="patch")
    c = L.Conv2D(4, 3, padding="valid", activation="relu", name="conv")(x_in)
    f = L.Flatten(name="flatten")(c)
    probs = L.Dense(3, activation="softmax", name="probs")(f)
    g = L.GlobalAveragePooling2D(name="gap")(c)
    score = L.Dense(2, activation="sigmoid", name="score")(g)
    return k.Model(x_in, [score, probs], name="two_outputs")


def build_mlp_linear(k):
    L = k.layers
    return k.Sequential([
        k.Input(shape=(5,), name="x"),
        L.Dense(7, activation="linear", name="dense1"),
        L.Activation("sigmoid", name="sigmoid"),
        L.Dense(3, name="dense2"),
    ], name="mlp_linear")


def build_lambda_layer(k):
    L = k.layers
    x_in = k.Input(shape=(4,), name="x")
    x = L.Dense(4, name="dense1")(x_in)
    x = L.Lambda(lambda t: t * 2, name="double")(x)
    y = L.Dense(2, name="dense2")(x)
    return k.Model(x_in, y, name="lambda_layer")


def build_unsupported_layer(k):
    L = k.layers
    return k.Sequential([
        k.Input(shape=(4, 6, 3), name="frames"),
        L.ConvLSTM1D(2, 3, name="conv_lstm"),
        L.Flatten(name="flatten"),
    ], name="unsupported_layer")


def build_embedding(k):
    L = k.layers
    ids = k.Input(shape=(5,), dtype="int32", name="ids")
    ids64 = k.Input(shape=(2, 3), dtype="int64", name="ids64")
    floats = k.Input(shape=(4,), name="float_ids")  # Keras casts to int32 (truncation)
    table = L.Embedding(20, 4, name="embed")
    a = table(ids)
    b = L.Embedding(12, 3, name="embed64")(ids64)
    c = table(floats)
    # mask_zero makes a mask; Dense and the output do not read it.
    m = L.Embedding(20, 3, mask_zero=True, name="embed_masked")(ids)
    m = L.Dense(2, name="dense_after_mask")(m)
    return k.Model([ids, ids64, floats], [a, b, c, m], name="embedding")


def embedding_inputs(rng, index, shape):
    high = [20, 12, 20][index]
    if index == 2:
        return rng.uniform(0, high - 0.01, size=shape).astype(np.float32)
    return rng.integers(0, high, size=shape).astype([np.int32, np.int64, None][index])


def build_masking(k):
    L = k.layers
    seq = k.Input(shape=(6, 3), name="sequence")
    # mask_value 0.5: the all-0.5 steps of the input become zeros; no layer reads the mask.
    a = L.Masking(0.5, name="mask_half")(seq)
    a = L.Dense(4, name="dense")(a)
    b = L.Masking(0.0, name="mask_zero")(seq)
    b = L.Conv1D(2, 3, name="conv1")(b)
    return k.Model(seq, [a, b], name="masking")


def masking_inputs(rng, index, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    x[0, 1, :] = 0.5
    x[0, 4, :] = 0.5
    x[1, 2, :] = 0.0
    x[1, 3, 1] = 0.5  # one feature only: not masked
    return x


def build_masking_rnn(k):
    L = k.layers
    return k.Sequential([
        k.Input(shape=(6, 3), name="sequence"),
        L.Masking(0.0, name="mask"),
        L.Dense(4, name="dense"),
        L.LSTM(2, name="lstm"),
    ], name="masking_rnn")


def build_resampling(k):
    L = k.layers
    img = k.Input(shape=(5, 6, 3), name="image")
    c = L.Conv2D(4, 1, name="conv")(img)  # held channels first inside Ferry
    return k.Model(img, [
        L.UpSampling2D((2, 3), interpolation="bilinear", name="upsample_bilinear")(c),
        L.Resizing(7, 4, name="resize_bilinear")(img),  # 5 -> 7 up, 6 -> 4 down
        # 5 -> 8 and 6 -> 10 leave no output cell halfway between two input cells (no ties)
        L.Resizing(8, 10, interpolation="nearest", name="resize_nearest")(c),
        L.Resizing(4, 4, crop_to_aspect_ratio=True, name="resize_crop")(img),
        L.CenterCrop(3, 4, name="center_crop")(c),
        L.CenterCrop(7, 4, name="center_crop_up")(img),  # taller than the input: smart_resize
    ], name="resampling")


def build_resampling_filters(k):
    L = k.layers
    img = k.Input(shape=(7, 9, 3), name="image")
    c = L.Conv2D(4, 1, name="conv")(img)  # held channels first inside Ferry
    return k.Model(img, [
        L.Resizing(5, 13, interpolation="bicubic", name="resize_bicubic")(img),  # 7 -> 5 down, 9 -> 13 up
        L.Resizing(4, 6, interpolation="area", name="resize_area")(c),
        L.Resizing(11, 5, interpolation="lanczos3", name="resize_lanczos3")(img),
        L.Resizing(3, 16, interpolation="lanczos5", name="resize_lanczos5")(c),
        L.Resizing(10, 6, interpolation="bicubic", crop_to_aspect_ratio=True, name="resize_bicubic_crop")(img),
        L.UpSampling2D((2, 3), interpolation="bicubic", name="upsample_bicubic")(c),
        L.UpSampling2D((3, 2), interpolation="lanczos3", name="upsample_lanczos3")(c),
    ], name="resampling_filters")


def build_resampling_filters_k2(k):
    L = k.layers
    img = k.Input(shape=(7, 9, 3), name="image")
    c = L.Conv2D(4, 1, name="conv")(img)
    return k.Model(img, [
        L.Resizing(5, 13, interpolation="gaussian", name="resize_gaussian")(img),
        L.Resizing(11, 4, interpolation="mitchellcubic", name="resize_mitchellcubic")(c),
        L.UpSampling2D((2, 3), interpolation="gaussian", name="upsample_gaussian")(c),
        L.UpSampling2D((3, 2), interpolation="area", name="upsample_area")(c),
        L.UpSampling2D((2, 2), interpolation="mitchellcubic", name="upsample_mitchellcubic")(img),
    ], name="resampling_filters_k2")


def build_resampling_options_k3(k):
    L = k.layers
    img = k.Input(shape=(13, 11, 3), name="image")
    c = L.Conv2D(4, 1, name="conv")(img)
    return k.Model(img, [
        # antialias widens the kernel when shrinking (ignored by nearest and area)
        L.Resizing(5, 4, antialias=True, name="resize_bilinear_antialias")(img),
        L.Resizing(6, 3, interpolation="bicubic", antialias=True, name="resize_bicubic_antialias")(c),
        L.Resizing(4, 7, interpolation="lanczos3", antialias=True, name="resize_lanczos3_antialias")(img),
        L.Resizing(5, 4, interpolation="area", antialias=True, name="resize_area_antialias")(c),
        L.Resizing(5, 4, interpolation="nearest", antialias=True, name="resize_nearest_antialias")(img),
        L.Resizing(17, 14, antialias=True, name="resize_up_antialias")(img),  # growing: no widening
        # pad_to_aspect_ratio: 13x11 -> 13x13 (shortfall 3 to 13x14: one column each side), then resize
        L.Resizing(7, 8, pad_to_aspect_ratio=True, name="resize_pad_width")(img),
        # 13x11 -> 21x11 (shortfall 9 to 22x11: four rows of 0.5 each side)
        L.Resizing(8, 4, interpolation="bicubic", pad_to_aspect_ratio=True, fill_value=0.5,
                   name="resize_pad_height")(c),
    ], name="resampling_options_k3")


def build_attention(k):
    L = k.layers
    q = k.Input(shape=(4, 6), name="query")
    v = k.Input(shape=(5, 6), name="value")
    key = k.Input(shape=(5, 6), name="key")
    scores_out, scores = L.Attention(name="attn_scores")([q, v], return_attention_scores=True)
    return k.Model([q, v, key], [
        L.Attention(name="attn_dot")([q, v]),
        L.Attention(use_scale=True, name="attn_scaled")([q, v, key]),
        L.Attention(score_mode="concat", use_scale=True, name="attn_concat")([q, v]),
        L.Attention(score_mode="concat", name="attn_concat_plain")([q, v, key]),
        L.Attention(name="attn_causal")([q, q], use_causal_mask=True),
        scores_out, scores,
    ], name="attention")


def build_multi_head_attention(k):
    L = k.layers
    q = k.Input(shape=(4, 8), name="query")
    v = k.Input(shape=(6, 5), name="value")
    key = k.Input(shape=(6, 3), name="key")
    x = L.Dense(8, name="dense")(q)
    scored, scores = L.MultiHeadAttention(2, 4, name="mha_scores")(x, v, key=key, return_attention_scores=True)
    return k.Model([q, v, key], [
        L.MultiHeadAttention(num_heads=2, key_dim=3, name="mha_cross")(q, v),
        L.MultiHeadAttention(num_heads=3, key_dim=2, value_dim=4, use_bias=False, output_shape=7,
                             name="mha_self_causal")(x, x, use_causal_mask=True),
        scored, scores,
    ], name="multi_head_attention")


def build_attention_masks(k):
    # Masks given as model inputs: MultiHeadAttention's attention_mask (int32 0/1 and float32,
    # with and without use_causal_mask) and Attention's mask=[query_mask, value_mask] (bool).
    # attention_mask_inputs hides every key of some queries: tf_keras then weighs the values
    # uniformly; Keras 3.15 does too through ops.dot_product_attention, but gives zeros when the
    # layer returns its scores (its Softmax-with-mask path), so the two references differ there.
    L = k.layers
    q = k.Input(shape=(4, 8), name="query")
    v = k.Input(shape=(6, 5), name="value")
    cross_mask = k.Input(shape=(4, 6), dtype="int32", name="cross_mask")
    self_mask = k.Input(shape=(4, 4), name="self_mask")
    q_mask = k.Input(shape=(4,), dtype="bool", name="query_mask")
    v_mask = k.Input(shape=(6,), dtype="bool", name="value_mask")
    x = L.Dense(8, name="dense")(q)
    cross, cross_scores = L.MultiHeadAttention(2, 3, name="mha_cross_masked")(
        q, v, attention_mask=cross_mask, return_attention_scores=True)
    causal = L.MultiHeadAttention(2, 4, name="mha_self_masked_causal")(
        x, x, attention_mask=self_mask, use_causal_mask=True)
    v8 = L.Dense(8, name="value_proj")(v)
    att, att_scores = L.Attention(name="attn_masked")([x, v8], mask=[q_mask, v_mask], return_attention_scores=True)
    att_causal = L.Attention(use_scale=True, name="attn_masked_causal")([x, x], mask=[q_mask, q_mask],
                                                                          use_causal_mask=True)
    return k.Model([q, v, cross_mask, self_mask, q_mask, v_mask],
                   [cross, cross_scores, causal, att, att_scores, att_causal], name="attention_masks")


def attention_mask_inputs(rng, index, shape):
    if index == 2:  # cross_mask, int32: query 1 of sample 0 sees no key
        m = (rng.random(shape) > 0.4).astype(np.int32)
        m[0, 1, :] = 0
        m[1, 2, :] = 1
        return m
    if index == 3:  # self_mask, float32 0/1: with the causal mask, query 0 of sample 1 sees no key
        m = (rng.random(shape) > 0.3).astype(np.float32)
        m[1, 0, 0] = 0
        m[0, 3, :] = 1
        return m
    if index in (4, 5):  # query_mask, value_mask
        m = rng.random(shape) > 0.3
        m[:, 0] = True
        m[1, -1] = False
        return m
    return rng.standard_normal(shape).astype(np.float32)


def build_attention_mask_none(k):
    # Attention's mask list with a None entry: that side is unmasked.
    L = k.layers
    q = k.Input(shape=(4, 8), name="query")
    v = k.Input(shape=(6, 8), name="value")
    q_mask = k.Input(shape=(4,), dtype="bool", name="query_mask")
    v_mask = k.Input(shape=(6,), dtype="bool", name="value_mask")
    queries_only, scores = L.Attention(name="attn_query_mask")([q, v], mask=[q_mask, None], return_attention_scores=True)
    values_only = L.Attention(use_scale=True, name="attn_value_mask")([q, v], mask=[None, v_mask])
    return k.Model([q, v, q_mask, v_mask], [queries_only, scores, values_only], name="attention_mask_none")


def attention_mask_none_inputs(rng, index, shape):
    if index in (2, 3):
        m = rng.random(shape) > 0.3
        m[:, 0] = True
        m[1, -1] = False
        return m
    return rng.standard_normal(shape).astype(np.float32)


def build_mha_robust_masking(k):
    # tf_keras's softmax_robust_masking: scores where the mask is <= 0.5 replaced by -1e9 (a
    # causal mask makes the mask boolean first, so there any nonzero value attends).
    L = k.layers
    x = k.Input(shape=(5, 6), name="sequence")
    mask = k.Input(shape=(5, 5), name="mask")
    plain = L.MultiHeadAttention(2, 3, softmax_robust_masking=True, name="mha_robust")(
        x, x, attention_mask=mask, return_attention_scores=True)
    causal = L.MultiHeadAttention(2, 3, softmax_robust_masking=True, name="mha_robust_causal")(
        x, x, attention_mask=mask, use_causal_mask=True)
    return k.Model([x, mask], list(plain) + [causal], name="mha_robust_masking")


def robust_mask_inputs(rng, index, shape):
    if index == 1:  # values 0, 0.3, 0.7, 1: 0.3 hides under robust masking, not as (1 - m) * -1e9
        m = rng.choice(np.array([0.0, 0.3, 0.7, 1.0], np.float32), size=shape)
        m[0, 2, :] = 0.3  # every key hidden: uniform weights
        m[:, :, 0] = np.maximum(m[:, :, 0], 0.3)  # with the causal mask, the first key stays visible
        m[0, 2, 0] = 0.3
        return m
    return rng.standard_normal(shape).astype(np.float32)


def build_tf_op_lambda(k):
    # tf_keras records TensorFlow functions on Keras tensors as TFOpLambda layers (Keras 3 has
    # no such layer).
    import tensorflow as tf
    L = k.layers
    img = k.Input(shape=(4, 5, 3), name="image")
    vec = k.Input(shape=(3,), name="vector")
    c = L.Conv2D(3, 1, name="conv")(img)  # held channels first inside Ferry
    hard = tf.math.multiply(L.ReLU(6.0, name="relu6")(c + 3.0), 1.0 / 6.0)  # MobileNetV3's hard sigmoid
    return k.Model([img, vec], [
        hard,
        tf.math.add(c, img),
        tf.math.subtract(img, c),
        tf.math.truediv(c, 4.0),
        c / 2.0,
        tf.math.multiply(img, L.Reshape((1, 1, 3), name="vec4d")(vec)),
        tf.math.add(L.GlobalAveragePooling2D(name="gap")(c), vec),
    ], name="tf_op_lambda")


def build_keras_operations(k):
    # Keras 3 records arithmetic on Keras tensors as operations (keras.src.ops.numpy Add,
    # Subtract, Multiply, TrueDivide), a number as a positional argument; its legacy .h5 keeps
    # only their class names, which Add, Subtract and Multiply share with merging layers.
    L = k.layers
    img = k.Input(shape=(4, 5, 3), name="image")
    vec = k.Input(shape=(3,), name="vector")
    c = L.Conv2D(3, 1, name="conv")(img)  # held channels first inside Ferry
    hard = L.ReLU(6.0, name="relu6")(c + 3.0) * (1.0 / 6.0)  # MobileNetV3's hard sigmoid
    return k.Model([img, vec], [
        hard,
        L.Add(name="add_layer")([c, img]),
        c - img,
        2.0 - c,
        c / 4.0,
        img * L.Reshape((1, 1, 3), name="vec4d")(vec),
        L.GlobalAveragePooling2D(name="gap")(c) + vec,
    ], name="keras_operations")


def build_gelu_approximate(k):
    # activation="gelu" is always exact; the tanh approximation is saved only as a function on
    # Keras tensors: tf_keras records tf.nn.gelu(x, approximate=...) as a TFOpLambda, Keras 3
    # records keras.ops.gelu(x, approximate=...) as a Gelu operation (module keras.src.ops.nn).
    L = k.layers
    x = k.Input(shape=(16,), name="x")
    img = k.Input(shape=(4, 5, 3), name="image")
    c = L.Conv2D(3, 1, name="conv")(img)  # held channels first inside Ferry
    if k.__name__ == "tf_keras":
        import tensorflow as tf
        outs = [tf.nn.gelu(x, approximate=True), tf.nn.gelu(x), tf.nn.gelu(c, approximate=True)]
    else:
        outs = [k.ops.gelu(x, approximate=True), k.ops.gelu(x, approximate=False), k.activations.gelu(c, approximate=True)]
    return k.Model([x, img], outs + [L.Activation("gelu", name="gelu_layer")(c)], name="gelu_approximate")


def gelu_inputs(rng, index, shape):
    if index == 0:
        # -3.5 .. 3.5: the two forms differ by up to 4.7e-4 near |x| = 2.7, above the tolerance there
        return np.linspace(-3.5, 3.5, int(np.prod(shape)), dtype=np.float32).reshape(shape)
    return rng.standard_normal(shape).astype(np.float32) * 2


def build_conv_transpose_padding(k):
    L = k.layers
    img = k.Input(shape=(5, 4, 3), name="image")
    seq = k.Input(shape=(6, 2), name="sequence")
    a = L.Conv2DTranspose(4, 3, strides=2, padding="same", output_padding=1, name="same_pad1")(img)
    b = L.Conv2DTranspose(2, (2, 3), strides=(3, 2), padding="valid", output_padding=(2, 1),
                          name="valid_pad")(img)
    c = L.Conv2DTranspose(3, (3, 4), strides=3, padding="same", output_padding=(0, 2), name="same_pad02")(img)
    d = L.Conv1DTranspose(3, 4, strides=3, padding="same", output_padding=1, name="deconv1d_pad")(seq)
    e = L.Conv1DTranspose(2, 3, strides=2, padding="valid", output_padding=1, activation="tanh",
                          name="deconv1d_valid_pad")(seq)
    return k.Model([img, seq], [a, b, c, d, e], name="conv_transpose_padding")


def build_nested_shared(k):
    L = k.layers
    inner = k.Sequential([
        k.Input(shape=(6,), name="inner_in"),
        L.Dense(5, activation="tanh", name="inner_dense1"),
        L.Dense(4, name="inner_dense2"),
    ], name="inner")
    a = k.Input(shape=(6,), name="left")
    b = k.Input(shape=(6,), name="right")
    shared = L.Dense(6, activation="relu", name="shared")
    x = inner(shared(a))
    y = inner(shared(b))
    total = L.Add(name="sum")([x, y])
    diff = L.Subtract(name="diff")([x, y])
    return k.Model([a, b], [total, diff], name="nested_shared")


def build_functional_in_sequential(k):
    L = k.layers
    f_in = k.Input(shape=(8, 8, 3), name="patch")
    c = L.Conv2D(4, 3, activation="relu", name="fconv")(f_in)
    g = L.GlobalAveragePooling2D(name="fgap")(c)
    features = k.Model(f_in, g, name="features")
    return k.Sequential([
        k.Input(shape=(8, 8, 3), name="image"),
        features,
        L.Dense(3, activation="softmax", name="head"),
    ], name="functional_in_sequential")


def build_slash_names(k):
    L = k.layers
    # Keras 2 allows '/' in layer names (DenseNet's conv1/conv: nested HDF5 groups); Keras 3
    # forbids it.
    sep = "/" if k.__name__.startswith("tf_keras") else "_"
    x_in = k.Input(shape=(6, 6, 2), name="image")
    x = L.Conv2D(3, 3, name="conv1" + sep + "conv")(x_in)
    x = L.Activation("relu", name="conv1" + sep + "relu")(x)
    x = L.Flatten(name="flatten")(x)
    y = L.Dense(4, name="logits")(x)
    return k.Model(x_in, y, name="slash_names")


COMMON_ACTIVATIONS = ["relu", "relu6", "sigmoid", "hard_sigmoid", "tanh", "softmax", "log_softmax",
                      "softplus", "softsign", "elu", "selu", "exponential", "swish", "silu", "gelu",
                      "mish", "leaky_relu", "linear"]


def build_activations(k):
    L = k.layers
    x_in = k.Input(shape=(6,), name="x")
    outs = [L.Dense(4, activation=a, name="act_" + a)(x_in) for a in COMMON_ACTIVATIONS]
    return k.Model(x_in, outs, name="activations")


def build_activations_k3(k):
    L = k.layers
    x_in = k.Input(shape=(6,), name="x")
    outs = [L.Dense(4, activation=a, name="act_" + a)(x_in) for a in ["hard_silu", "hard_swish"]]
    return k.Model(x_in, outs, name="activations_k3")


def build_activation_layers(k):
    L = k.layers
    x_in = k.Input(shape=(5, 6, 4), name="fmap")
    c = L.Conv2D(4, 1, name="conv")(x_in)  # held channels first inside Ferry
    outs = [
        L.ReLU(max_value=0.5, name="relu_max")(c),
        L.ReLU(negative_slope=0.1, name="relu_slope")(c),
        L.ReLU(threshold=0.3, name="relu_threshold")(c),
        L.ReLU(max_value=0.6, negative_slope=0.05, name="relu_max_slope")(x_in),
        L.LeakyReLU(0.2, name="leaky")(c),
        L.PReLU(shared_axes=[1, 2], name="prelu_shared")(c),
        L.PReLU(name="prelu_full")(x_in),
        L.ELU(0.7, name="elu")(c),
        L.Softmax(axis=1, name="softmax_rows")(c),
        L.Softmax(name="softmax_last")(x_in),
    ]
    return k.Model(x_in, outs, name="activation_layers")


def build_thresholded_relu(k):
    L = k.layers
    x_in = k.Input(shape=(4, 3), name="x")
    x = L.Dense(3, name="dense")(x_in)
    y = L.ThresholdedReLU(theta=0.4, name="thresholded")(x)
    return k.Model(x_in, y, name="thresholded_relu")


def build_conv1d_family(k):
    L = k.layers
    x_in = k.Input(shape=(20, 3), name="sequence")
    x = L.Conv1D(5, 3, padding="causal", dilation_rate=2, activation="relu", name="causal")(x_in)
    x = L.Conv1D(6, 4, strides=2, padding="same", name="strided")(x)
    x = L.SeparableConv1D(4, 3, depth_multiplier=2, padding="same", name="separable")(x)
    x = L.DepthwiseConv1D(3, depth_multiplier=2, name="depthwise")(x)
    a = L.MaxPooling1D(2, name="maxpool")(x)
    b = L.AveragePooling1D(3, strides=2, padding="same", name="avgpool")(x)
    g = L.GlobalMaxPooling1D(name="gmp")(a)
    h = L.GlobalAveragePooling1D(keepdims=True, name="gap_keep")(b)
    return k.Model(x_in, [g, h], name="conv1d_family")


def build_conv2d_family(k):
    L = k.layers
    x_in = k.Input(shape=(9, 10, 4), name="image")
    x = L.DepthwiseConv2D(3, depth_multiplier=2, strides=2, padding="same", name="depthwise")(x_in)
    x = L.SeparableConv2D(6, (3, 2), padding="same", activation="relu", name="separable")(x)
    x = L.Conv2D(6, 3, groups=2, padding="same", name="grouped")(x)
    x = L.DepthwiseConv2D(2, use_bias=False, dilation_rate=2, name="depthwise_dilated")(x)
    g = L.GlobalMaxPooling2D(keepdims=True, name="gmp_keep")(x)
    return k.Model(x_in, [x, g], name="conv2d_family")


def build_conv3d_family(k):
    L = k.layers
    x_in = k.Input(shape=(6, 7, 5, 2), name="volume")
    x = L.Conv3D(4, 3, padding="same", strides=(2, 1, 1), activation="tanh", name="conv3d")(x_in)
    a = L.MaxPooling3D(2, name="maxpool3d")(x)
    b = L.AveragePooling3D(2, strides=1, padding="same", name="avgpool3d")(x)
    g = L.GlobalAveragePooling3D(name="gap3d")(b)
    m = L.GlobalMaxPooling3D(name="gmp3d")(a)
    return k.Model(x_in, [g, m, a], name="conv3d_family")


def build_core_misc(k):
    L = k.layers
    x_in = k.Input(shape=(6, 5, 3), name="image")
    x = L.Rescaling(1.0 / 3, offset=-0.5, name="rescale")(x_in)
    x = L.Rescaling([0.5, 2.0, -1.0], offset=[0.1, 0.0, 0.2], name="rescale_channels")(x)
    c = L.Conv2D(4, 3, padding="same", name="conv")(x)
    c = L.BatchNormalization(name="bn")(c)
    c = L.SpatialDropout2D(0.3, name="spatial_dropout")(c)
    c = L.GaussianNoise(0.5, name="noise")(c)
    d = L.BatchNormalization(center=False, scale=False, epsilon=0.01, name="bn_plain")(c)
    d = L.GaussianDropout(0.2, name="gaussian_dropout")(d)
    d = L.AlphaDropout(0.2, name="alpha_dropout")(d)
    d = L.ActivityRegularization(l1=0.1, name="activity_reg")(d)
    d = L.Identity(name="identity")(d)
    e = L.Dense(5, name="dense_nd")(d)  # Dense on a 4-D input
    e = L.BatchNormalization(axis=1, name="bn_rows")(e)
    p = L.Permute((3, 1, 2), name="permute")(e)
    r = L.Reshape((5, -1), name="reshape")(p)
    m1 = L.Maximum(name="maximum")([c, d])
    m2 = L.Minimum(name="minimum")([c, d])
    m3 = L.Average(name="average")([m1, m2, c])
    m4 = L.Multiply(name="multiply")([m3, d])
    return k.Model(x_in, [r, m4], name="core_misc")


def build_reshaping_family(k):
    L = k.layers
    img = k.Input(shape=(5, 6, 3), name="image")
    seq = k.Input(shape=(7, 4), name="sequence")
    vol = k.Input(shape=(3, 4, 5, 2), name="volume")
    a = L.ZeroPadding2D(((1, 2), (0, 3)), name="zeropad2d")(img)
    a = L.Conv2D(4, 3, name="conv")(a)
    a = L.Cropping2D(((1, 0), (2, 1)), name="crop2d")(a)
    a = L.UpSampling2D((2, 3), name="upsample2d")(a)
    s = L.ZeroPadding1D((2, 1), name="zeropad1d")(seq)
    s = L.Cropping1D((1, 3), name="crop1d")(s)
    s = L.UpSampling1D(3, name="upsample1d")(s)
    s2 = L.Concatenate(axis=1, name="concat_time")([s, seq])
    v = L.ZeroPadding3D((1, (0, 2), 1), name="zeropad3d")(vol)
    v = L.Cropping3D(((1, 0), (0, 1), (2, 2)), name="crop3d")(v)
    v = L.UpSampling3D((1, 2, 2), name="upsample3d")(v)
    d = L.Dense(3, name="dense")(L.GlobalAveragePooling1D(name="gap")(seq))
    r = L.RepeatVector(4, name="repeat")(d)
    return k.Model([img, seq, vol], [a, s2, v, r], name="reshaping_family")


def build_concat_family(k):
    L = k.layers
    img = k.Input(shape=(4, 5, 3), name="image")
    c1 = L.Conv2D(2, 1, name="conv1")(img)
    c2 = L.Conv2D(3, 3, padding="same", name="conv2")(img)
    channels = L.Concatenate(name="concat_channels")([c1, c2])
    rows = L.Concatenate(axis=1, name="concat_rows")([c1, c1])
    mixed = L.Concatenate(axis=-1, name="concat_mixed")([img, c2])  # Keras layout + channels first
    return k.Model(img, [channels, rows, mixed], name="concat_family")


def build_conv_transpose(k):
    L = k.layers
    img = k.Input(shape=(5, 4, 3), name="image")
    seq = k.Input(shape=(6, 2), name="sequence")
    a = L.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu", name="deconv_same")(img)
    b = L.Conv2DTranspose(2, 2, strides=3, padding="valid", name="deconv_gap")(img)
    c = L.Conv2DTranspose(3, (3, 2), strides=(1, 2), dilation_rate=1, padding="valid", use_bias=False,
                          name="deconv_valid")(img)
    d = L.Conv1DTranspose(3, 4, strides=2, padding="same", name="deconv1d")(seq)
    return k.Model([img, seq], [a, b, c, d], name="conv_transpose")


def build_norm_family(k):
    L = k.layers
    x_in = k.Input(shape=(5, 6, 8), name="fmap")
    c = L.Conv2D(8, 1, name="conv")(x_in)  # held channels first inside Ferry
    outs = [
        L.LayerNormalization(name="layernorm_last")(c),
        L.LayerNormalization(center=False, scale=False, name="layernorm_plain")(x_in),
        L.GroupNormalization(groups=4, name="groupnorm")(c),
        L.GroupNormalization(groups=2, center=False, epsilon=1e-4, name="groupnorm_noshift")(x_in),
        L.UnitNormalization(name="unitnorm_last")(c),
        L.UnitNormalization(axis=1, name="unitnorm_rows")(x_in),
    ]
    return k.Model(x_in, outs, name="norm_family")


def build_preprocessing(k):
    L = k.layers
    x_in = k.Input(shape=(4, 3), name="x")
    given = L.Normalization(mean=[0.5, -1.0, 2.0], variance=[4.0, 0.25, 1.0], name="given_stats")(x_in)
    adapted = L.Normalization(axis=-1, name="adapted")  # statistics stored as weights
    adapted.build((None, 4, 3))
    return k.Model(x_in, [given, adapted(x_in)], name="preprocessing")


def build_dot_family(k):
    L = k.layers
    a = k.Input(shape=(5,), name="a")
    b = k.Input(shape=(5,), name="b")
    s = k.Input(shape=(3, 4), name="s")
    t = k.Input(shape=(6, 4), name="t")
    return k.Model([a, b, s, t], [
        L.Dot(axes=1, name="dot_vec")([a, b]),
        L.Dot(axes=1, normalize=True, name="cosine")([a, b]),
        L.Dot(axes=(2, 2), name="dot_seq")([s, t]),
        L.Dot(axes=(1, 1), name="dot_time")([s, L.Dense(5, name="proj")(s)]),
    ], name="dot_family")


def build_custom_layer(k):
    L = k.layers
    ser = k.saving if hasattr(k, "saving") and hasattr(k.saving, "register_keras_serializable") \
        else k.utils

    @ser.register_keras_serializable(package="ferrytest")
    class Doubler(L.Layer):
        def call(self, x):
            return x * 2

    x_in = k.Input(shape=(4,), name="x")
    x = L.Dense(3, name="dense")(x_in)
    y = Doubler(name="doubler")(x)
    return k.Model(x_in, y, name="custom_layer")


def build_recurrent_family(k):
    L = k.layers
    seq = k.Input(shape=(7, 3), name="sequence")
    ctx_in = k.Input(shape=(5,), name="context")
    a = L.SimpleRNN(5, activation="relu", return_sequences=True, name="simple_rnn")(seq)
    b, b_h, b_c = L.LSTM(4, return_sequences=True, return_state=True, name="lstm_states")(a)
    c = L.GRU(4, name="gru_after")(b)  # reset_after=True, the default
    d = L.GRU(3, reset_after=False, go_backwards=True, return_sequences=True, name="gru_before_back")(seq)
    e = L.LSTM(3, go_backwards=True, name="lstm_back")(d)
    h0 = L.Dense(4, activation="tanh", name="init_h")(ctx_in)
    f = L.GRU(4, return_sequences=True, name="gru_init")(seq, initial_state=[h0])
    g = L.LSTM(4, name="lstm_init")(seq, initial_state=[b_h, b_c])
    r, r_h = L.SimpleRNN(2, use_bias=False, go_backwards=True, return_state=True, name="rnn_nobias")(seq)
    inner = k.Sequential([k.Input(shape=(7, 3), name="inner_in"),
                          L.LSTM(3, use_bias=False, return_sequences=True, name="inner_lstm"),
                          L.GRU(2, name="inner_gru")], name="inner")
    n = inner(seq)
    return k.Model([seq, ctx_in], [b, b_h, b_c, c, e, f, g, r, r_h, n], name="recurrent_family")


def build_rnn_cells(k):
    L = k.layers
    x = k.Input(shape=(5, 3), name="sequence")
    h0 = k.Input(shape=(4,), name="h0")
    simple = L.RNN(L.SimpleRNNCell(4, activation="relu"), return_sequences=True, go_backwards=True,
                   name="rnn_simple")(x)
    lstm_out, lstm_h, lstm_c = L.RNN(L.LSTMCell(4), return_state=True, name="rnn_lstm")(simple)
    gru = L.RNN(L.GRUCell(4, reset_after=False), name="rnn_gru")(x, initial_state=h0)
    # A list of cells is saved as StackedRNNCells; two of one class are numbered in Keras 3's file.
    stack = L.RNN([L.LSTMCell(4), L.LSTMCell(3, use_bias=False), L.GRUCell(2)], return_sequences=True,
                  return_state=True, name="rnn_stack")(x)
    backwards = L.RNN([L.GRUCell(4), L.SimpleRNNCell(2)], go_backwards=True, name="rnn_stack_backwards")(
        x, initial_state=[h0, L.Dense(2, name="h0_small")(h0)])
    # The stack's states come nested per cell ([h, c] of an LSTM cell); the model lists them flat.
    stack_states = [t for s in stack[1:] for t in (s if isinstance(s, (list, tuple)) else [s])]
    return k.Model([x, h0], [simple, lstm_out, lstm_h, lstm_c, gru, stack[0]] + stack_states + [backwards],
                   name="rnn_cells")


def build_recurrent_stateful(k):
    # stateful=True needs a fixed batch; the reference is the reloaded model's first batch, so
    # every layer starts from zero states, which is what Ferry computes on every call.
    L = k.layers
    seq = k.Input(shape=(5, 3), batch_size=BATCH, name="sequence")
    a = L.LSTM(4, stateful=True, return_sequences=True, name="lstm_stateful")(seq)
    b = L.GRU(3, stateful=True, name="gru_stateful")(a)
    c = L.SimpleRNN(2, stateful=True, go_backwards=True, name="rnn_stateful")(seq)
    return k.Model(seq, [b, c], name="recurrent_stateful")


def build_recurrent_hard_sigmoid(k):
    L = k.layers
    seq = k.Input(shape=(6, 4), name="sequence")
    a = L.LSTM(3, recurrent_activation="hard_sigmoid", return_sequences=True, name="lstm_hard")(seq)
    b = L.GRU(3, recurrent_activation="hard_sigmoid", activation="softsign", name="gru_hard")(a)
    return k.Model(seq, b, name="recurrent_hard_sigmoid")


def build_bidirectional_family(k):
    L = k.layers
    seq = k.Input(shape=(6, 3), name="sequence")
    outs = [
        L.Bidirectional(L.LSTM(3, return_sequences=True, name="l_concat"), name="bi_concat")(seq),
        L.Bidirectional(L.GRU(3, name="g_sum"), merge_mode="sum", name="bi_sum")(seq),
        L.Bidirectional(L.SimpleRNN(2, return_sequences=True, name="r_mul"), merge_mode="mul", name="bi_mul")(seq),
        L.Bidirectional(L.LSTM(2, name="l_ave"), merge_mode="ave", name="bi_ave")(seq),
    ]
    fw, bw = L.Bidirectional(L.GRU(2, reset_after=False, return_sequences=True, name="g_none"), merge_mode=None,
                             name="bi_none")(seq)
    y, fh, fc, bh, bc = L.Bidirectional(L.LSTM(2, return_state=True, name="l_state"), name="bi_state")(seq)
    return k.Model(seq, outs + [fw, bw, y, fh, fc, bh, bc], name="bidirectional_family")


def build_time_distributed(k):
    L = k.layers
    frames = k.Input(shape=(3, 6, 5, 2), name="frames")
    seq = k.Input(shape=(4, 6), name="sequence")
    a = L.TimeDistributed(L.Conv2D(3, 3, activation="relu", name="conv"), name="td_conv")(frames)
    a = L.TimeDistributed(L.MaxPooling2D(2, name="pool"), name="td_pool")(a)
    a = L.TimeDistributed(L.Flatten(name="flat"), name="td_flatten")(a)
    a = L.LSTM(4, name="lstm")(a)
    b = L.TimeDistributed(L.Dense(3, activation="sigmoid", name="dense"), name="td_dense")(seq)
    return k.Model([frames, seq], [a, b], name="time_distributed")


def build_norm_axes(k):
    L = k.layers
    x_in = k.Input(shape=(4, 5, 6), name="fmap")
    seq = k.Input(shape=(3, 4), name="sequence")
    return k.Model([x_in, seq], [
        L.LayerNormalization(axis=1, name="layernorm_rows")(x_in),
        L.LayerNormalization(axis=2, center=False, name="layernorm_cols")(x_in),
        L.LayerNormalization(axis=1, scale=False, epsilon=0.01, name="layernorm_time")(seq),
        L.Normalization(mean=[0.5, -1.0, 2.0, 0.0], variance=[4.0, 0.25, 1.0, 9.0], invert=True,
                        name="denormalize")(seq),
    ], name="norm_axes")


def build_layernorm_rms(k):
    L = k.layers
    x_in = k.Input(shape=(3, 6), name="x")
    return k.Model(x_in, [L.LayerNormalization(rms_scaling=True, name="rms_last")(x_in),
                          L.LayerNormalization(axis=1, rms_scaling=True, name="rms_time")(x_in)],
                   name="layernorm_rms")


# name -> (builder, description, expect, error_layer, probability outputs to
# check for saturation: {output index: "softmax" | "sigmoid"})
MODELS = {
    "mlp": (build_mlp,
            "Sequential MLP: Dense relu/tanh/softmax via activation=, Dropout "
            "(identity at inference).",
            "ok", None, {0: "softmax"}),
    "cnn_flatten": (build_cnn_flatten,
                    "Sequential CNN on a non-square 20x28x3 input: Conv2D valid+relu, "
                    "MaxPooling2D, Conv2D same stride 2 tanh, Flatten (NHWC order "
                    "matters), Dense, Activation('softmax').",
                    "ok", None, {0: "softmax"}),
    "cnn_gap": (build_cnn_gap,
                "Functional CNN on odd 31x33x3 input: Conv2D 5x5 stride 2 same "
                "(asymmetric padding) without bias + sigmoid, AveragePooling2D 3/2 "
                "same (pad cells excluded from the mean), Conv2D valid, "
                "Activation('relu'), MaxPooling2D 3/2 same, GlobalAveragePooling2D, "
                "Dense linear.",
                "ok", None, {}),
    "conv_out": (build_conv_out,
                 "Functional model whose output is a 4-D NHWC feature map: Conv2D "
                 "same relu, Conv2D (3,1) strides (2,1) valid linear, MaxPooling2D "
                 "(2,2) strides (1,2) valid.",
                 "ok", None, {}),
    "two_outputs": (build_two_outputs,
                    "Functional, one input and two outputs sharing a conv trunk; "
                    "outputs declared as [score, probs], i.e. not in creation order.",
                    "ok", None, {0: "sigmoid", 1: "softmax"}),
    "mlp_linear": (build_mlp_linear,
                   "Tiny Sequential: Dense activation='linear', Activation('sigmoid'), "
                   "Dense without activation.",
                   "ok", None, {}),
    "nested_shared": (build_nested_shared,
                      "Functional with two inputs and two outputs: a Dense shared by both "
                      "inputs, a nested Sequential called twice (Keras 2 numbers its calls "
                      "1 and 2, Keras 3 0 and 1), Add and Subtract merges. Also saved as "
                      "JSON + weights-only files.",
                      "ok", None, {}, {"json": True}),
    "functional_in_sequential": (build_functional_in_sequential,
                                 "Sequential holding a Functional feature extractor (Conv2D, "
                                 "GlobalAveragePooling2D) and a softmax head. Also saved as "
                                 "JSON + weights-only files.",
                                 "ok", None, {0: "softmax"}, {"json": True}),
    "slash_names": (build_slash_names,
                    "Keras 2 layer names with '/' (conv1/conv, nested HDF5 groups); the "
                    "Keras 3 variant names them conv1_conv.",
                    "ok", None, {}),
    "activations": (build_activations,
                    "Every activation function both Keras versions know, as Dense "
                    "activation= (hard_sigmoid differs: Keras 2 clip(0.2x+0.5), Keras 3 "
                    "relu6(x+3)/6).",
                    "ok", None, {}, {"k2_k3_differ": True}),
    "activations_k3": (build_activations_k3,
                       "Keras 3 only activation functions: hard_silu, hard_swish.",
                       "ok", None, {}, {"frameworks": ("keras3",)}),
    "activation_layers": (build_activation_layers,
                          "ReLU (max_value, negative_slope, threshold), LeakyReLU, PReLU "
                          "(shared_axes and full), ELU, Softmax (axis 1 and last) on 4-D "
                          "tensors in both internal layouts.",
                          "ok", None, {}),
    "thresholded_relu": (build_thresholded_relu,
                         "ThresholdedReLU (Keras 2 only; Keras 3 removed the layer).",
                         "ok", None, {}, {"frameworks": ("keras2",)}),
    "conv1d_family": (build_conv1d_family,
                      "Conv1D causal + dilation, Conv1D same stride 2, SeparableConv1D, "
                      "DepthwiseConv1D, MaxPooling1D, AveragePooling1D same, global 1-D "
                      "pools (one with keepdims).",
                      "ok", None, {}),
    "conv2d_family": (build_conv2d_family,
                      "DepthwiseConv2D (depth_multiplier 2, stride 2, same; dilated without "
                      "bias), SeparableConv2D, grouped Conv2D, GlobalMaxPooling2D keepdims.",
                      "ok", None, {}),
    "conv3d_family": (build_conv3d_family,
                      "Conv3D same with strides, MaxPooling3D, AveragePooling3D same, global "
                      "3-D pools, a 5-D output.",
                      "ok", None, {}),
    "core_misc": (build_core_misc,
                  "Rescaling (scalar and per channel), BatchNormalization (channel axis, "
                  "center/scale off, a non-channel axis), the dropout family and Identity "
                  "(identity at inference), Dense on a 4-D input, Permute, Reshape with -1, "
                  "Maximum, Minimum, Average, Multiply.",
                  "ok", None, {}),
    "reshaping_family": (build_reshaping_family,
                         "ZeroPadding1D/2D/3D, Cropping1D/2D/3D and UpSampling1D/2D/3D "
                         "(nearest) with asymmetric amounts, Concatenate along time, "
                         "RepeatVector; three inputs.",
                         "ok", None, {}),
    "concat_family": (build_concat_family,
                      "Concatenate along channels, rows, and of tensors held in different "
                      "layouts.",
                      "ok", None, {}),
    "conv_transpose": (build_conv_transpose,
                       "Conv2DTranspose same stride 2, valid with kernel < stride (output "
                       "padding), valid (3,2) strides (1,2) without bias; Conv1DTranspose same.",
                       "ok", None, {}),
    "norm_family": (build_norm_family,
                    "LayerNormalization (last axis, center/scale off), "
                    "GroupNormalization (with and without shift), UnitNormalization (last "
                    "axis and axis 1), on tensors in both internal layouts.",
                    "ok", None, {}),
    "preprocessing": (build_preprocessing,
                      "Normalization with mean/variance given in the config and with "
                      "statistics stored as weights (mean, variance, count). References "
                      "come from the reloaded files (in memory the statistics are stale).",
                      "ok", None, {}, {"stale_in_memory": True}),
    "dot_family": (build_dot_family,
                   "Dot of vectors (plain and normalize=True), of sequences along the "
                   "feature axes (2, 2) and along time (1, 1); four inputs.",
                   "ok", None, {}),
    "recurrent_family": (build_recurrent_family,
                         "SimpleRNN (relu, no bias, go_backwards, return_state), LSTM (return_sequences "
                         "and return_state, go_backwards, initial_state from another LSTM's states), GRU "
                         "(reset_after true and false, go_backwards, initial_state from a Dense), "
                         "stacked layers, and a nested Sequential of an LSTM and a GRU. Outputs of one "
                         "layer are named <layer>, <layer>_1, ... as Keras names them.",
                         "ok", None, {}),
    "recurrent_hard_sigmoid": (build_recurrent_hard_sigmoid,
                               "LSTM and GRU with recurrent_activation hard_sigmoid (Keras 2: clip(0.2x "
                               "+ 0.5), Keras 3: relu6(x + 3) / 6) and a softsign activation.",
                               "ok", None, {}, {"k2_k3_differ": True}),
    "bidirectional_family": (build_bidirectional_family,
                             "Bidirectional LSTM, GRU and SimpleRNN with every merge_mode (concat, sum, "
                             "mul, ave, None), sequences and last outputs, and return_state.",
                             "ok", None, {}),
    "time_distributed": (build_time_distributed,
                         "TimeDistributed Conv2D, MaxPooling2D and Flatten over video frames into an "
                         "LSTM, and TimeDistributed Dense over a sequence.",
                         "ok", None, {}),
    "norm_axes": (build_norm_axes,
                  "LayerNormalization over non-trailing axes (axis 1 or 2, center or scale "
                  "off) and Normalization with invert=True.",
                  "ok", None, {}),
    "layernorm_rms": (build_layernorm_rms,
                      "Keras 3's LayerNormalization rms_scaling (x / sqrt(var + eps) * gamma) over the "
                      "last axis and axis 1.",
                      "ok", None, {}, {"frameworks": ("keras3",)}),
    "custom_layer": (build_custom_layer,
                     "Error fixture: a registered custom layer ('doubler', package "
                     "ferrytest): its code is not in the file.",
                     "error", "doubler", {}),
    "lambda_layer": (build_lambda_layer,
                     "Error fixture: Functional model containing a Lambda layer "
                     "('double', x * 2) whose Python bytecode cannot be imported.",
                     "error", "double", {}),
    "unsupported_layer": (build_unsupported_layer,
                          "Error fixture: Sequential model containing a "
                          "ConvLSTM1D layer ('conv_lstm') outside the supported layer set.",
                          "error", "conv_lstm", {},
                          # the error fixture's outputs are not compared (Keras 2 and 3 differ)
                          {"k2_k3_differ": True}),
    "embedding": (build_embedding,
                  "Embedding on int32 and int64 ids and on float ids (Keras truncates them to int32); "
                  "one table shared by two calls; mask_zero=True followed by Dense (the mask is not read).",
                  "ok", None, {}, {"inputs": embedding_inputs}),
    "masking": (build_masking,
                "Masking(0.5): steps whose features all equal 0.5 become zeros (inputs hold such steps), "
                "then Dense; Masking(0.0) then Conv1D. No layer reads the mask.",
                "ok", None, {}, {"inputs": masking_inputs}),
    "masking_rnn": (build_masking_rnn,
                    "Error fixture: Masking, Dense (passes the mask on), then an LSTM ('lstm') that would "
                    "skip the masked steps.",
                    "error", "lstm", {}),
    "resampling": (build_resampling,
                   "UpSampling2D bilinear (2, 3); Resizing bilinear 5x6 -> 7x4, nearest -> 8x10, "
                   "crop_to_aspect_ratio -> 4x4; CenterCrop 3x4, and 7x4 (taller than the input: "
                   "Keras crops to the aspect ratio and resizes).",
                   "ok", None, {}),
    "resampling_filters": (build_resampling_filters,
                           "tf.image.resize methods ONNX Resize does not state: Resizing bicubic (TensorFlow's "
                           "table of Keys' cubic, fractions rounded to 1/1024) 7x9 -> 5x13 and with "
                           "crop_to_aspect_ratio, area -> 4x6, lanczos3 -> 11x5, lanczos5 -> 3x16; UpSampling2D "
                           "bicubic (2, 3) and lanczos3 (3, 2).",
                           "ok", None, {}),
    "resampling_filters_k2": (build_resampling_filters_k2,
                              "tf_keras only (Keras 3 refuses them): Resizing gaussian and mitchellcubic; "
                              "UpSampling2D gaussian, area and mitchellcubic.",
                              "ok", None, {}, {"frameworks": ("keras2",)}),
    "resampling_options_k3": (build_resampling_options_k3,
                              "Keras 3 only Resizing options: antialias (bilinear, bicubic, lanczos3 shrinking; "
                              "area and nearest, which ignore it; bilinear growing), pad_to_aspect_ratio (an odd "
                              "shortfall of columns, which Keras pads one short; rows of fill_value 0.5, then "
                              "bicubic).",
                              "ok", None, {}, {"frameworks": ("keras3",)}),
    "attention": (build_attention,
                  "Attention: dot, use_scale with a separate key, concat scores with and without scale, "
                  "use_causal_mask, return_attention_scores.",
                  "ok", None, {},
                  {"keras3_h5_unreadable": "Keras 3.15 cannot reload its own .h5 of this model (it reads "
                                           "score_mode 'dot' as the function keras.ops.dot): its references "
                                           "come from reloading keras3.keras."}),
    "multi_head_attention": (build_multi_head_attention,
                             "MultiHeadAttention: cross attention (value of another width), self attention "
                             "with use_causal_mask, value_dim, no bias and output_shape, a separate key with "
                             "return_attention_scores.",
                             "ok", None, {}),
    "rnn_cells": (build_rnn_cells,
                  "The generic RNN layer: over SimpleRNNCell (relu, go_backwards, sequences), LSTMCell "
                  "(return_state), GRUCell (reset_after=False, initial_state), and StackedRNNCells (a list of "
                  "cells: LSTM, LSTM without bias, GRU with sequences and every cell's states; GRU and SimpleRNN "
                  "going backwards from given states).",
                  "ok", None, {}),
    "recurrent_stateful": (build_recurrent_stateful,
                           "stateful=True LSTM (return_sequences) into a GRU, and a SimpleRNN going backwards, on "
                           "a fixed batch of 2: the references are the reloaded model's first batch, from zero "
                           "states.",
                           "ok", None, {}, {"fixed_batch": True}),
    "attention_masks": (build_attention_masks,
                        "Masks as model inputs: MultiHeadAttention attention_mask (int32 0/1 on cross attention "
                        "with return_attention_scores; float32 0/1 with use_causal_mask), Attention "
                        "mask=[query_mask, value_mask] (bool inputs; with use_causal_mask). Some queries see no "
                        "key: tf_keras's MultiHeadAttention then weighs the values uniformly, as Keras 3.15's does "
                        "without return_attention_scores; with it Keras 3.15 gives zeros (the two references "
                        "differ there).",
                        "ok", None, {}, {"inputs": attention_mask_inputs, "k2_k3_differ": True,
                                         "keras3_h5_unreadable": "Keras 3.15 cannot reload its own .h5 of this model "
                                         "(it reads Attention's score_mode 'dot' as the function keras.ops.dot): its "
                                         "references come from reloading keras3.keras."}),
    "attention_mask_none": (build_attention_mask_none,
                            "Attention with mask=[query_mask, None] (return_attention_scores) and [None, "
                            "value_mask] (use_scale): the None side is unmasked.",
                            "ok", None, {}, {"inputs": attention_mask_none_inputs,
                                             "keras3_h5_unreadable": "Keras 3.15 cannot reload its own .h5 of this "
                                             "model (it reads Attention's score_mode 'dot' as the function "
                                             "keras.ops.dot): its references come from reloading keras3.keras."}),
    "mha_robust_masking": (build_mha_robust_masking,
                           "tf_keras MultiHeadAttention with softmax_robust_masking and a float attention_mask of "
                           "0, 0.3, 0.7 and 1 (scores where it is <= 0.5 replaced by -1e9; one query sees no key), "
                           "with return_attention_scores, and with use_causal_mask (the mask made boolean: 0.3 "
                           "attends). Keras 3 has no such option.",
                           "ok", None, {}, {"inputs": robust_mask_inputs, "frameworks": ("keras2",)}),
    "keras_operations": (build_keras_operations,
                         "Keras 3 operations on Keras tensors: x + 3.0 and * (1/6) (MobileNetV3's hard "
                         "sigmoid), subtracting tensors, 2.0 - x, x / 4.0, multiplying by a reshaped (N, 1, 1, C) "
                         "tensor, adding two (N, C) tensors, beside an Add layer. Keras 3 only.",
                         "ok", None, {}, {"frameworks": ("keras3",),
                                          "keras3_h5_unreadable": "Keras 3.15 cannot reload its own .h5 of this model "
                                          "(a number passed positionally): its references come from reloading "
                                          "keras3.keras."}),
    "tf_op_lambda": (build_tf_op_lambda,
                     "tf_keras TFOpLambda layers: x + 3 and tf.math.multiply(x, 1/6) (MobileNetV3's hard "
                     "sigmoid), tf.math.add / subtract of tensors, tf.math.truediv and x / 2 by numbers, "
                     "multiply by a reshaped (N, 1, 1, C) tensor, add of two (N, C) tensors. Keras 2 only.",
                     "ok", None, {}, {"frameworks": ("keras2",), "keras_zip": False}),
    "gelu_approximate": (build_gelu_approximate,
                         "gelu with approximate=True (tanh form) and False as saved: tf_keras's TFOpLambda "
                         "tf.nn.gelu(x, approximate=...), Keras 3's Gelu operation (keras.ops.gelu / "
                         "keras.activations.gelu on a Keras tensor), on a vector and a feature map, beside "
                         "Activation('gelu') (exact).",
                         "ok", None, {}, {"inputs": gelu_inputs, "names_differ": True,
                                          "keras3_h5_unreadable": "Keras 3.15 cannot reload its own .h5 of this model "
                                          "(its legacy loader does not know the Gelu operation): its references come "
                                          "from reloading keras3.keras."}),
    "conv_transpose_padding": (build_conv_transpose_padding,
                               "Conv2DTranspose / Conv1DTranspose with output_padding: same and valid, "
                               "strides 2 and 3, per-axis amounts.",
                               "ok", None, {}),
}


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def make_weights(model_name, model):
    """Deterministic numpy weights for every layer, in layer order (Keras 2 and 3 may name
    layers differently: Keras 2 allows '/' in names)."""
    weights = []
    for layer in model.layers:
        current = layer.get_weights()
        if not current:
            continue
        rng = np.random.default_rng(_seed(model_name, layer.name))
        arrays = []
        for w in current:
            shape = w.shape
            if len(shape) >= 2:
                if type(layer).__name__ == "Conv2DTranspose":
                    # kernel is (kh, kw, out_channels, in_channels)
                    fan_in = int(np.prod(shape[:-2])) * shape[-1]
                else:
                    fan_in = int(np.prod(shape[:-1]))
                a = rng.normal(0.0, 1.0 / np.sqrt(fan_in), size=shape)
            elif "variance" in layer.weights[len(arrays)].name or "gamma" in layer.weights[len(arrays)].name:
                # BatchNormalization statistics and scales: positive, around 1
                a = rng.uniform(0.5, 1.5, size=shape)
            else:
                # nonzero biases of both signs, magnitude 0.1 .. 0.5
                a = rng.uniform(0.1, 0.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)
            arrays.append(a.astype(np.float32))
        weights.append(arrays)
    return weights


def apply_weights(model, weights):
    pending = list(weights)
    for layer in model.layers:
        current = layer.get_weights()
        if not current:
            continue
        new = pending.pop(0)
        assert [w.shape for w in current] == [w.shape for w in new], (
            layer.name, [w.shape for w in current], [w.shape for w in new])
        layer.set_weights(new)
    assert not pending, "layers left without weights"


def _history_layer(tensor):
    hist = tensor._keras_history
    return hist[0]


def io_names(model):
    ins = [_history_layer(t).name for t in model.inputs]
    outs = unique_names([_history_layer(t).name for t in model.outputs])
    return ins, outs


def unique_names(names):
    """Output names as Keras makes them unique when one layer gives several outputs: the layer's
    name, then <name>_1, <name>_2, ..."""
    used, counts, out = set(), {}, []
    for n in names:
        proposal = n
        while proposal in used:
            counts[n] = counts.get(n, 0) + 1
            proposal = "%s_%d" % (n, counts[n])
        used.add(proposal)
        out.append(proposal)
    return out


def predict(model, inputs):
    x = inputs[0] if len(inputs) == 1 else list(inputs)
    out = model.predict(x, verbose=0, batch_size=BATCH)
    if isinstance(out, (list, tuple)):
        out = list(out)
    else:
        out = [out]
    return [np.asarray(o, dtype=np.float32) for o in out]


def load_frameworks():
    import tf_keras
    import keras
    assert keras.backend.backend() == "tensorflow", keras.backend.backend()
    return [
        # tag, module, writer string, loader kwargs for the reload
        ("keras2", tf_keras, "tf_keras %s" % tf_keras.__version__,
         lambda path: tf_keras.models.load_model(path, compile=False)),
        ("keras3", keras, "keras %s" % keras.__version__,
         lambda path: keras.models.load_model(path, compile=False)),
    ]


def load_unsafe(tag, path):
    """Reload a Lambda model (Keras 3 refuses Python bytecode by default)."""
    if tag == "keras3":
        import keras
        return keras.models.load_model(path, compile=False, safe_mode=False)
    import tf_keras
    return tf_keras.models.load_model(path, compile=False, safe_mode=False)


def check_probabilities(name, tag, outputs, prob_outputs):
    for idx, kind in prob_outputs.items():
        p = outputs[idx]
        lo, hi = float(p.min()), float(p.max())
        if kind == "softmax":
            assert np.allclose(p.sum(axis=-1), 1.0, atol=1e-5), (name, tag)
            ok = hi < 0.95 and lo > 1e-4
        else:
            ok = 0.02 < lo and hi < 0.98
        assert ok, "%s/%s output %d saturated: min %.4g max %.4g" % (name, tag, idx, lo, hi)


def save_other_forms(name, tag, k, model, out_dir, expect, opts, variant, outputs, variants, notes):
    """Besides the .h5: Keras 3's .keras zip, and (opts["json"]) the architecture JSON with a
    weights-only file. Each is reloaded by its framework and must give the .h5's outputs."""
    forms = []
    if tag == "keras3" and opts.get("keras_zip", True):
        path = os.path.join(out_dir, "keras3.keras")
        model.save(path)
        forms.append(("keras3.keras", None,
                      lambda: k.models.load_model(path, compile=False, safe_mode=expect == "ok")))
    if opts.get("json"):
        json_name = "%s.json" % tag
        weights_name = "%s.weights.h5" % tag
        with open(os.path.join(out_dir, json_name), "w") as f:
            f.write(model.to_json())
        model.save_weights(os.path.join(out_dir, weights_name))

        def reload(json_name=json_name, weights_name=weights_name):
            with open(os.path.join(out_dir, json_name)) as f:
                m = k.models.model_from_json(f.read())
            m.load_weights(os.path.join(out_dir, weights_name))
            return m
        forms.append((json_name, weights_name, reload))
    for file_name, weights_name, reload in forms:
        v = {"file": file_name}
        if weights_name:
            v["weights"] = weights_name
        v["writer"] = variant["writer"]
        v["inputs"] = variant["inputs"]
        if expect == "ok":
            again = predict(reload(), [np.load(os.path.join(out_dir, i["npy"])) for i in variant["inputs"]])
            for a, b in zip(again, outputs):
                np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
            v["outputs"] = variant["outputs"]
        variants.append(v)


def generate(name, frameworks):
    builder, description, expect, error_layer, prob_outputs = MODELS[name][:5]
    opts = MODELS[name][5] if len(MODELS[name]) > 5 else {}
    out_dir = os.path.join(OUT_DIR, name)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)

    weights = None
    inputs = None
    ref_in_names = ref_out_names = None
    variants = []
    notes = []
    results = {}
    for tag, k, writer, loader in frameworks:
        if tag not in opts.get("frameworks", ("keras2", "keras3")):
            continue
        k.utils.set_random_seed(1234)
        model = builder(k)
        if weights is None:
            weights = make_weights(name, model)
        apply_weights(model, weights)

        in_names, out_names = io_names(model)
        if ref_in_names is None:
            ref_in_names, ref_out_names = in_names, out_names
        assert opts.get("names_differ") or (in_names, out_names) == (ref_in_names, ref_out_names), (
            name, tag, in_names, out_names, ref_in_names, ref_out_names)

        if inputs is None:
            inputs = []
            for i, t in enumerate(model.inputs):
                shape = (BATCH,) + tuple(int(d) for d in t.shape[1:])
                rng = np.random.default_rng(_seed(name, "input_%d" % i))
                if "inputs" in opts:
                    x = opts["inputs"](rng, i, shape)
                else:
                    x = rng.standard_normal(shape).astype(np.float32)
                np.save(os.path.join(out_dir, "input_%d.npy" % i), x)
                inputs.append(x)

        h5_name = "%s.h5" % tag
        h5_path = os.path.join(out_dir, h5_name)
        try:
            model.save(h5_path)
        except Exception as e:  # only acceptable for error fixtures
            if expect != "error":
                raise
            if os.path.exists(h5_path):
                os.remove(h5_path)
            notes.append("%s variant skipped: %s could not save it (%s: %s)."
                         % (tag, writer, type(e).__name__, str(e).splitlines()[0]))
            continue

        variant = {
            "file": h5_name,
            "writer": writer,
            "inputs": [{"name": n, "npy": "input_%d.npy" % i}
                       for i, n in enumerate(in_names)],
        }
        try:
            if tag == "keras3" and opts.get("keras3_h5_unreadable"):
                # Keras 3 cannot read this .h5 back: the reference comes from its .keras file.
                zip_path = os.path.join(out_dir, "keras3.keras")
                model.save(zip_path)
                reloaded = k.models.load_model(zip_path, compile=False)
                notes.append(opts["keras3_h5_unreadable"])
            else:
                reloaded = loader(h5_path) if expect == "ok" else load_unsafe(tag, h5_path)
            assert io_names(reloaded) == (in_names, out_names), (name, tag, io_names(reloaded))
            outputs = predict(reloaded, inputs)
        except Exception as e:
            if expect != "error":
                raise
            notes.append("%s outputs omitted: reload failed (%s)." % (tag, type(e).__name__))
            outputs = None
        if outputs is not None:
            assert len(outputs) == len(out_names), (name, tag)
            # the reloaded model must match the in-memory one
            # (Normalization keeps stale statistics in memory until reloaded: skip there.)
            direct = predict(model, inputs) if not opts.get("stale_in_memory") else outputs
            for a, b in zip(outputs, direct):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
            check_probabilities(name, tag, outputs, prob_outputs)
            files = []
            for i, (n, o) in enumerate(zip(out_names, outputs)):
                npy = "%s_output_%d.npy" % (tag, i)
                np.save(os.path.join(out_dir, npy), o)
                files.append({"name": n, "npy": npy})
            variant["outputs"] = files
            results[tag] = outputs
        variants.append(variant)
        try:
            save_other_forms(name, tag, k, model, out_dir, expect, opts, variant, outputs, variants, notes)
        except Exception as e:
            if expect != "error":
                raise
            notes.append("%s other forms skipped (%s)." % (tag, type(e).__name__))

    # Keras 2 and Keras 3 must compute the same function.
    if "keras2" in results and "keras3" in results and not opts.get("k2_k3_differ"):
        for a, b in zip(results["keras2"], results["keras3"]):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)

    manifest = {"name": name,
                "description": " ".join([description] + notes),
                "expect": expect}
    if error_layer is not None:
        manifest["error_layer"] = error_layer
    if opts.get("fixed_batch"):
        manifest["fixed_batch"] = BATCH  # the model's inputs fix the batch size
    manifest["variants"] = variants
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")

    size = sum(os.path.getsize(os.path.join(out_dir, p)) for p in os.listdir(out_dir))
    shapes = ", ".join("x".join(str(d) for d in o.shape[1:])
                       for o in results.get("keras2", results.get("keras3", [])))
    print("wrote %-18s %-6s variants=%s inputs=%s outputs=[%s] %d bytes"
          % (name, expect, "+".join(v["file"] for v in variants),
             ",".join(ref_in_names), shapes or "-", size))


# ---------------------------------------------------------------------------
# --inspect: dump the HDF5 layout of the written fixtures
# ---------------------------------------------------------------------------

def _attr(v):
    if isinstance(v, bytes):
        return "bytes(%r)" % v.decode("utf-8")[:60]
    if isinstance(v, np.ndarray):
        return "%s%s %r" % (v.dtype, list(v.shape), v.tolist())
    return "%s(%r)" % (type(v).__name__, v if not isinstance(v, str) else v[:60])


def inspect(names):
    import h5py
    for name in names:
        d = os.path.join(OUT_DIR, name)
        for h5 in ("keras2.h5", "keras3.h5"):
            path = os.path.join(d, h5)
            if not os.path.exists(path):
                continue
            print("== %s/%s" % (name, h5))
            with h5py.File(path, "r") as f:
                for key in f.attrs:
                    v = f.attrs[key]
                    print("  /@%s: %s" % (key, _attr(v) if key != "model_config"
                                          else "%s len=%d" % (type(v).__name__, len(v))))
                print("  root groups:", list(f.keys()))
                mw = f["model_weights"]
                for key in mw.attrs:
                    print("  model_weights/@%s: %s" % (key, _attr(mw.attrs[key])))
                for lname in mw:
                    g = mw[lname]
                    print("  model_weights/%s @weight_names=%s"
                          % (lname, [x.decode() if isinstance(x, bytes) else x
                                     for x in g.attrs.get("weight_names", [])]))

                    def visit(p, obj, base="model_weights/" + lname):
                        if isinstance(obj, h5py.Dataset):
                            print("    %s/%s %s %s" % (base, p, obj.dtype, obj.shape))
                    g.visititems(visit)


# ---------------------------------------------------------------------------
# --apps: keras.applications models (weights=None, randomized BatchNormalization
# statistics) written to the git-ignored fixtures-large/ for `make test-large`.
# ---------------------------------------------------------------------------

LARGE_DIR = os.path.join(ROOT, "fixtures-large")
APP_INPUT = (96, 96, 3)  # small images keep the run short; weights=None allows any size

# name -> keras.applications constructor name; ordered by priority.
APPS = ["ResNet50", "MobileNetV2", "VGG16", "MobileNet", "DenseNet121", "InceptionV3", "Xception",
        "ResNet50V2", "InceptionResNetV2", "MobileNetV3Small", "EfficientNetB0", "EfficientNetV2B0",
        "NASNetMobile", "ConvNeXtTiny", "RegNetX002", "VGG19", "ResNet101", "DenseNet169",
        "MobileNetV3Large"]


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def randomize_batchnorm(model, seed):
    """BatchNormalization as a trained model has it: random scales and offsets (gamma in
    0.5..1.5, beta ~ N(0, 0.2)), and moving statistics measured on a random batch run through
    the model in training mode (momentum 0, dropout off), so that every BatchNormalization
    sees inputs of about the mean and variance it divides by.

    Moving statistics drawn at random instead (mean ~ N(0, 0.2), variance in 0.5..1.5, as an
    earlier version did) let activations grow layer after layer: in the deeper EfficientNets
    they reach 1e3..1e6 and the logits are differences of such numbers, so float32 rounding
    alone moves them by 1e-3 of their size (onnxruntime and Ferry, running the same ONNX
    graph, differed from each other as much as from Keras), hiding any real difference."""
    rng = np.random.default_rng(seed)
    # LayerNormalization (ConvNeXt) as trained, and ConvNeXt's LayerScale away from its 1e-6
    # start, which would leave every block's branch out of the output.
    for layer in _all_layers(model):
        kind = type(layer).__name__
        if kind == "LayerNormalization":
            layer.set_weights([rng.uniform(0.5, 1.5, size=tuple(w.shape)).astype(np.float32) if i == 0
                               else rng.normal(0.0, 0.2, size=tuple(w.shape)).astype(np.float32)
                               for i, w in enumerate(layer.get_weights())])
        elif kind == "LayerScale":
            layer.set_weights([rng.uniform(0.1, 1.0, size=tuple(w.shape)).astype(np.float32)
                               for w in layer.get_weights()])
    norms = [l for l in _all_layers(model) if type(l).__name__ == "BatchNormalization"]
    for layer in norms:
        new = []
        for w in layer.weights:
            n = w.name.split("/")[-1].split(":")[0]
            shape = tuple(w.shape)
            if n == "gamma":
                new.append(rng.uniform(0.5, 1.5, size=shape).astype(np.float32))
            elif n == "beta":
                new.append(rng.normal(0.0, 0.2, size=shape).astype(np.float32))
            else:
                new.append(np.asarray(w.numpy() if hasattr(w, "numpy") else w, dtype=np.float32))
        layer.set_weights(new)
    dropouts = [l for l in _all_layers(model) if hasattr(l, "rate") and "Dropout" in type(l).__name__]
    saved = [(l, "momentum", l.momentum) for l in norms] + [(l, "rate", l.rate) for l in dropouts]
    for layer, attribute, _ in saved:
        setattr(layer, attribute, 0.0)
    batch = rng.uniform(-1, 1, (8,) + tuple(int(d) for d in model.inputs[0].shape[1:])).astype(np.float32)
    model(batch, training=True)
    for layer, attribute, value in saved:
        setattr(layer, attribute, value)


def generate_app(app, frameworks, with_keras2):
    out_dir = os.path.join(LARGE_DIR, app.lower())
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    x = np.random.default_rng(_seed(app, "input")).uniform(-1, 1, (BATCH,) + APP_INPUT).astype(np.float32)
    np.save(os.path.join(out_dir, "input_0.npy"), x)
    variants = []
    for tag, k, writer, loader in frameworks:
        if tag == "keras2" and not with_keras2:
            continue
        k.utils.set_random_seed(1234)
        try:
            model = getattr(k.applications, app)(weights=None, input_shape=APP_INPUT, classes=10,
                                                 classifier_activation=None)
        except Exception as e:
            print("skip %s/%s: %s" % (app, tag, e))
            continue
        randomize_batchnorm(model, _seed(app))
        # Layer classes the application defines itself (ConvNeXt's LayerScale, InceptionResNetV2's
        # CustomScaleLayer): no Keras registers them, so reloading its own file needs them named.
        own = application_layers(k)
        path = os.path.join(out_dir, "%s.h5" % tag)
        files_written = ["%s.h5" % tag]
        try:
            model.save(path)
            try:
                reloaded = k.models.load_model(path, compile=False, custom_objects=own)
            except Exception as e:
                if tag != "keras3":
                    raise
                # Keras 3.15 cannot reload its own .h5 of MobileNetV3 (an operation's float
                # argument) or InceptionResNetV2: the reference comes from its .keras file, and
                # both files are tested against it.
                print("%s/%s: .h5 not reloadable (%s: %s); reference from keras3.keras"
                      % (app, tag, type(e).__name__, str(e).splitlines()[0][:120]))
                zip_path = os.path.join(out_dir, "keras3.keras")
                model.save(zip_path)
                reloaded = k.models.load_model(zip_path, compile=False)
                files_written.append("keras3.keras")
            out = predict(reloaded, [x])
        except Exception as e:
            print("skip %s/%s: %s: %s" % (app, tag, type(e).__name__, str(e).splitlines()[0][:160]))
            for name in files_written:
                if os.path.exists(os.path.join(out_dir, name)):
                    os.remove(os.path.join(out_dir, name))
            continue
        in_names, out_names = io_names(reloaded)
        # The float64 twin's outputs: how far float32 rounding alone moves Keras's (the
        # large tests' agreement rule allows for it, Tests/crosscheck/conftest.py).
        exact = float64_outputs(k, reloaded, [x])
        files = []
        for i, (n, o, e) in enumerate(zip(out_names, out, exact)):
            npy = "%s_output_%d.npy" % (tag, i)
            np.save(os.path.join(out_dir, npy), o)
            np.save(os.path.join(out_dir, npy[:-4] + ".f64.npy"), e)
            files.append({"name": n, "npy": npy, "float64": npy[:-4] + ".f64.npy"})
        for name in files_written:
            variants.append({"file": name, "writer": writer,
                             "inputs": [{"name": in_names[0], "npy": "input_0.npy"}], "outputs": files})
            print("wrote %s/%s %.1f MB" % (app, name, os.path.getsize(os.path.join(out_dir, name)) / 1e6))
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump({"name": app.lower(), "description": "keras.applications.%s, weights=None, randomized "
                   "BatchNormalization statistics, %s input, 10 logits." % (app, "x".join(map(str, APP_INPUT))),
                   "expect": "ok", "variants": variants}, f, indent=2)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=sorted(MODELS), help="generate one model only")
    ap.add_argument("--inspect", action="store_true",
                    help="print the HDF5 layout of existing fixtures instead")
    ap.add_argument("--apps", nargs="*", metavar="APP",
                    help="build keras.applications models into fixtures-large/ (default: all of APPS)")
    ap.add_argument("--keras2", action="store_true", help="with --apps: also the tf_keras variant")
    args = ap.parse_args()
    if args.apps is not None:
        frameworks = load_frameworks()
        for app in args.apps or APPS:
            generate_app(app, frameworks, args.keras2)
        return
    names = [args.only] if args.only else list(MODELS)
    if args.inspect:
        inspect(names)
        return
    frameworks = load_frameworks()
    for name in names:
        generate(name, frameworks)


if __name__ == "__main__":
    sys.exit(main())
