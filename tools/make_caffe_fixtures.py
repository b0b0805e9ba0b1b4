#!/usr/bin/env python3
"""Generate the Caffe fixtures under fixtures/caffe/.

Run from the repository root with the fixture venv (tools/requirements-fixtures.txt; needs
`protoc` on the PATH):

    .venv-fixtures/bin/python tools/make_caffe_fixtures.py              # all nets
    .venv-fixtures/bin/python tools/make_caffe_fixtures.py --only lenet # some nets

Each net below is a deploy prototxt written here (small nets, one per layer family and per
format trap). The script compiles schemas/caffe.proto with `protoc --python_out` into a
temporary directory, fills every layer's weight blobs with seeded random numbers (BatchNorm
statistics stored multiplied by a scale factor other than 1, so an importer that forgets to
divide shows), and writes the binary `.caffemodel` with those blobs (V1 nets in V1 form with
legacy 4-D num/channels/height/width blob dims).

Reference outputs come from OpenCV 4.x's Caffe importer (`cv2.dnn.readNetFromCaffe`), never by
hand. Where OpenCV departs from Caffe (FORMATS.md: LRN `k`, Concat `concat_dim`, InnerProduct
`transpose`, no Bias layer, `round_mode` read as OpenCV's own `ceil_mode`, V1 and V2 mixed in one
file, Caffe forks' layer types, train_val data layers), the reference is OpenCV running an
equivalent net in a form it reads correctly -- the same weights, rewritten so that OpenCV
computes Caffe's semantics -- and the manifest says so under "reference". Ferry imports the
original files.

Layout, per net::

    fixtures/caffe/<net>/
        net.prototxt, net.caffemodel   the model as Ferry reads it
        reference.prototxt             the net OpenCV ran, when it differs from net.prototxt
        input_<i>.npy                  float32, batch 2
        output_<i>.npy                 OpenCV's outputs
        manifest.json                  {"name", "description", "expect": "ok"|"error",
                                        "reference", "inputs": [{"name", "npy"}],
                                        "outputs": [{"name", "npy"}], ["error_layer"]}

Outputs are the blobs no layer reads, in the order their last writer appears (Ferry's rule).
"""

import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import zlib

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "fixtures" / "caffe"
BATCH = 2


def compile_proto():
    """caffe_pb2 from schemas/caffe.proto, generated into a temporary directory."""
    tmp = tempfile.mkdtemp(prefix="caffe_pb2_")
    subprocess.run(["protoc", f"--python_out={tmp}", f"-I{ROOT / 'schemas'}", str(ROOT / "schemas" / "caffe.proto")],
                   check=True)
    sys.path.insert(0, tmp)
    import caffe_pb2  # noqa: E402
    return caffe_pb2


pb = compile_proto()
from google.protobuf import text_format  # noqa: E402
import cv2  # noqa: E402


def rng_for(*names):
    return np.random.default_rng(zlib.crc32("/".join(names).encode()))


# --------------------------------------------------------------------------------------------
# The nets. `blobs` gives each weighted layer's blob shapes (Caffe's order); BatchNorm layers
# list [C] and get mean, variance and the scale factor `bn_factor` (default 0.5).
# --------------------------------------------------------------------------------------------

LENET_V2 = """
name: "lenet"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 12 dim: 12 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool1" top: "ip1" inner_product_param { num_output: 10 } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "ip2" top: "prob" }
"""
LENET_BLOBS = {"conv1": [(4, 1, 3, 3), (4,)], "ip1": [(10, 100), (10,)], "ip2": [(5, 10), (5,)]}

LENET_V1 = """
name: "lenet"
input: "data"
input_dim: 1 input_dim: 1 input_dim: 12 input_dim: 12
layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1" blobs_lr: 1 blobs_lr: 2
         convolution_param { num_output: 4 kernel_size: 3 } }
layers { name: "pool1" type: POOLING bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layers { name: "ip1" type: INNER_PRODUCT bottom: "pool1" top: "ip1" inner_product_param { num_output: 10 } }
layers { name: "relu1" type: RELU bottom: "ip1" top: "ip1" }
layers { name: "ip2" type: INNER_PRODUCT bottom: "ip1" top: "ip2" inner_product_param { num_output: 5 } }
layers { name: "prob" type: SOFTMAX bottom: "ip2" top: "prob" }
"""

# V1 entries for the first half, V2 for the rest, in one file (Caffe and OpenCV refuse this).
LENET_MIXED = """
name: "lenet"
input: "data"
input_shape { dim: 1 dim: 1 dim: 12 dim: 12 }
layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1" convolution_param { num_output: 4 kernel_size: 3 } }
layers { name: "pool1" type: POOLING bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool1" top: "ip1" inner_product_param { num_output: 10 } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "ip2" top: "prob" }
"""

CONV_FORMS = """
name: "conv_forms"
input: "data"
input_shape { dim: 1 dim: 4 dim: 11 dim: 13 }
layer { name: "grouped" type: "Convolution" bottom: "data" top: "grouped"
        convolution_param { num_output: 6 kernel_size: 3 pad: 1 group: 2 } }
layer { name: "dilated" type: "Convolution" bottom: "grouped" top: "dilated"
        convolution_param { num_output: 6 kernel_size: 3 dilation: 2 pad: 2 stride: 2 } }
layer { name: "rect" type: "Convolution" bottom: "dilated" top: "rect"
        convolution_param { num_output: 5 kernel_h: 3 kernel_w: 2 pad_h: 1 pad_w: 0 stride_h: 1 stride_w: 2
                            bias_term: false } }
layer { name: "perdim" type: "Convolution" bottom: "rect" top: "perdim"
        convolution_param { num_output: 3 kernel_size: 1 kernel_size: 2 stride: 1 stride: 1 pad: 0 pad: 1 } }
"""
CONV_FORMS_BLOBS = {"grouped": [(6, 2, 3, 3), (6,)], "dilated": [(6, 6, 3, 3), (6,)], "rect": [(5, 6, 3, 2)],
                    "perdim": [(3, 5, 1, 2), (3,)]}

# H = 7, 3x3 stride 2 pad 1: ceil gives 4 and the last window starts at 5 (inside the input);
# H = 8, 2x2 stride 2 pad 1: ceil gives 5, whose last window would start at 8 = H + pad - 0 ...
# Caffe drops it (start >= H + pad) -> 4; AVE windows clipped to H + pad count the pad cells.
POOLING = """
name: "pooling"
input: "data"
input_shape { dim: 1 dim: 3 dim: 7 dim: 8 }
layer { name: "max_ceil" type: "Pooling" bottom: "data" top: "max_ceil"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "ave_ceil" type: "Pooling" bottom: "data" top: "ave_ceil"
        pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "ave_clip" type: "Pooling" bottom: "data" top: "ave_clip"
        pooling_param { pool: AVE kernel_h: 2 kernel_w: 2 stride: 2 pad: 1 } }
layer { name: "max_nopad" type: "Pooling" bottom: "data" top: "max_nopad"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "ave_rect" type: "Pooling" bottom: "data" top: "ave_rect"
        pooling_param { pool: AVE kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 3 pad_h: 1 pad_w: 1 } }
layer { name: "global_ave" type: "Pooling" bottom: "data" top: "global_ave"
        pooling_param { pool: AVE global_pooling: true } }
layer { name: "global_max" type: "Pooling" bottom: "data" top: "global_max"
        pooling_param { pool: MAX global_pooling: true } }
"""

POOLING_FLOOR = """
name: "pooling_floor"
input: "data"
input_shape { dim: 1 dim: 2 dim: 7 dim: 8 }
layer { name: "max_floor" type: "Pooling" bottom: "data" top: "max_floor"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 round_mode: FLOOR } }
layer { name: "ave_floor" type: "Pooling" bottom: "data" top: "ave_floor"
        pooling_param { pool: AVE kernel_size: 2 stride: 2 pad: 1 round_mode: FLOOR } }
"""

# Pooling after a ReLU: Caffe's ceil-rounded MAX windows reading pad cells (3x3/2 pad 1 and
# 2x2/2 pad 1 on 7x8) read only the input's cells, which are >= 0 there, so Keras can write them
# as ZeroPadding2D + `valid` pooling (a zero cannot win); AVE 2x2/2 pad 1 has only whole
# windows (each divides by 4 in Caffe, pad cells counted), the same with ZeroPadding2D.
POOLING_RELU = """
name: "pooling_relu"
input: "data"
input_shape { dim: 1 dim: 3 dim: 7 dim: 8 }
layer { name: "relu" type: "ReLU" bottom: "data" top: "relu" }
layer { name: "max_ceil" type: "Pooling" bottom: "relu" top: "max_ceil"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "max_pad" type: "Pooling" bottom: "relu" top: "max_pad"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 pad: 1 } }
layer { name: "ave_pad" type: "Pooling" bottom: "data" top: "ave_pad"
        pooling_param { pool: AVE kernel_size: 2 stride: 2 pad: 1 } }
"""

# Crop of every axis but the batch (channels, height and width, from axis 1): Keras's Cropping
# layers cut the axes between the batch and the last, so Keras needs two of them here.
CROP_ALL_AXES = """
name: "crop_all_axes"
input: "data"
input_shape { dim: 1 dim: 5 dim: 7 dim: 8 }
input: "size"
input_shape { dim: 1 dim: 2 dim: 4 dim: 3 }
layer { name: "crop" type: "Crop" bottom: "data" bottom: "size" top: "crop" crop_param { axis: 1 offset: 1 offset: 2 offset: 3 } }
layer { name: "crop_hw" type: "Crop" bottom: "data" bottom: "size" top: "crop_hw" crop_param { axis: 2 offset: 1 } }
"""

RESNET_BOTTLENECK = """
name: "resnet_bottleneck"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 8 dim: 6 dim: 6 } } }
layer { name: "res_a" type: "Convolution" bottom: "data" top: "res_a"
        convolution_param { num_output: 4 kernel_size: 1 bias_term: false } }
layer { name: "bn_a" type: "BatchNorm" bottom: "res_a" top: "res_a" batch_norm_param { use_global_stats: true } }
layer { name: "scale_a" type: "Scale" bottom: "res_a" top: "res_a" scale_param { bias_term: true } }
layer { name: "relu_a" type: "ReLU" bottom: "res_a" top: "res_a" }
layer { name: "res_b" type: "Convolution" bottom: "res_a" top: "res_b"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 bias_term: false } }
layer { name: "bn_b" type: "BatchNorm" bottom: "res_b" top: "res_b" batch_norm_param { eps: 0.001 } }
layer { name: "scale_b" type: "Scale" bottom: "res_b" top: "res_b" scale_param { bias_term: true } }
layer { name: "relu_b" type: "ReLU" bottom: "res_b" top: "res_b" }
layer { name: "res_c" type: "Convolution" bottom: "res_b" top: "res_c"
        convolution_param { num_output: 8 kernel_size: 1 bias_term: false } }
layer { name: "bn_c" type: "BatchNorm" bottom: "res_c" top: "res_c" }
layer { name: "scale_c" type: "Scale" bottom: "res_c" top: "res_c" scale_param { bias_term: false } }
layer { name: "sum" type: "Eltwise" bottom: "data" bottom: "res_c" top: "sum" }
layer { name: "relu_out" type: "ReLU" bottom: "sum" top: "sum" }
layer { name: "pool" type: "Pooling" bottom: "sum" top: "pool" pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc" inner_product_param { num_output: 3 } }
"""
RESNET_BLOBS = {"res_a": [(4, 8, 1, 1)], "bn_a": [(4,)], "scale_a": [(4,), (4,)],
                "res_b": [(4, 4, 3, 3)], "bn_b": [(4,)], "scale_b": [(4,), (4,)],
                "res_c": [(8, 4, 1, 1)], "bn_c": [(8,)], "scale_c": [(8,)], "fc": [(3, 8), (3,)]}

BATCHNORM_ZERO = """
name: "batchnorm_zero_factor"
input: "data"
input_shape { dim: 1 dim: 3 dim: 4 dim: 4 }
layer { name: "bn" type: "BatchNorm" bottom: "data" top: "bn" }
layer { name: "bn2d" type: "InnerProduct" bottom: "bn" top: "fc" inner_product_param { num_output: 4 } }
layer { name: "bn_fc" type: "BatchNorm" bottom: "fc" top: "fc" batch_norm_param { eps: 0.01 } }
"""
BATCHNORM_ZERO_BLOBS = {"bn": [(3,)], "bn2d": [(4, 48), (4,)], "bn_fc": [(4,)]}

MOBILENET_BLOCK = """
name: "mobilenet_block"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 10 dim: 10 } } }
layer { name: "conv0" type: "Convolution" bottom: "data" top: "conv0"
        convolution_param { num_output: 8 kernel_size: 3 pad: 1 stride: 2 bias_term: false } }
layer { name: "conv0/bn" type: "BatchNorm" bottom: "conv0" top: "conv0" }
layer { name: "conv0/scale" type: "Scale" bottom: "conv0" top: "conv0" scale_param { bias_term: true } }
layer { name: "conv0/relu" type: "ReLU" bottom: "conv0" top: "conv0" }
layer { name: "conv1/dw" type: "ConvolutionDepthwise" bottom: "conv0" top: "conv1/dw"
        convolution_param { num_output: 8 kernel_size: 3 pad: 1 bias_term: false } }
layer { name: "conv1/dw/bn" type: "BatchNorm" bottom: "conv1/dw" top: "conv1/dw" }
layer { name: "conv1/dw/scale" type: "Scale" bottom: "conv1/dw" top: "conv1/dw" scale_param { bias_term: true } }
layer { name: "conv1/dw/relu" type: "ReLU" bottom: "conv1/dw" top: "conv1/dw" }
layer { name: "conv2/dw" type: "DepthwiseConvolution" bottom: "conv1/dw" top: "conv2/dw"
        convolution_param { num_output: 8 kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "conv1" type: "Convolution" bottom: "conv2/dw" top: "conv1"
        convolution_param { num_output: 16 kernel_size: 1 } }
layer { name: "conv1/relu" type: "ReLU" bottom: "conv1" top: "conv1" relu_param { negative_slope: 0.1 } }
layer { name: "pool" type: "Pooling" bottom: "conv1" top: "pool" pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "Convolution" bottom: "pool" top: "fc" convolution_param { num_output: 5 kernel_size: 1 } }
layer { name: "flat" type: "Flatten" bottom: "fc" top: "flat" }
layer { name: "prob" type: "Softmax" bottom: "flat" top: "prob" }
"""
MOBILENET_BLOBS = {"conv0": [(8, 3, 3, 3)], "conv0/bn": [(8,)], "conv0/scale": [(8,), (8,)],
                   "conv1/dw": [(8, 1, 3, 3)], "conv1/dw/bn": [(8,)], "conv1/dw/scale": [(8,), (8,)],
                   "conv2/dw": [(8, 1, 3, 3), (8,)], "conv1": [(16, 8, 1, 1), (16,)], "fc": [(5, 16, 1, 1), (5,)]}


def mobilenet_reference(text):
    """OpenCV does not know the forks' depthwise types: the same convolutions grouped by channel."""
    return re.sub(r'type: "(ConvolutionDepthwise|DepthwiseConvolution)"(.*?)convolution_param \{',
                  r'type: "Convolution"\2convolution_param { group: 8', text, flags=re.S)


ELTWISE = """
name: "eltwise"
input: "a"
input_shape { dim: 1 dim: 3 dim: 4 dim: 5 }
input: "b"
input_shape { dim: 1 dim: 3 dim: 4 dim: 5 }
layer { name: "c" type: "TanH" bottom: "a" top: "c" }
layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" bottom: "c" top: "sum"
        eltwise_param { operation: SUM coeff: 0.5 coeff: -2 coeff: 1 } }
layer { name: "prod" type: "Eltwise" bottom: "a" bottom: "b" bottom: "c" top: "prod" eltwise_param { operation: PROD } }
layer { name: "max" type: "Eltwise" bottom: "a" bottom: "b" bottom: "c" top: "max" eltwise_param { operation: MAX } }
layer { name: "plain" type: "Eltwise" bottom: "sum" bottom: "prod" bottom: "max" top: "plain" }
layer { name: "sig" type: "Sigmoid" bottom: "plain" top: "sig" }
"""

SCALE_FORMS = """
name: "scale_forms"
input: "data"
input_shape { dim: 1 dim: 3 dim: 4 dim: 5 }
input: "factor"
input_shape { dim: 1 dim: 3 }
layer { name: "per_channel" type: "Scale" bottom: "data" top: "per_channel" scale_param { bias_term: true } }
layer { name: "per_row" type: "Scale" bottom: "per_channel" top: "per_row" scale_param { axis: 2 num_axes: 1 } }
layer { name: "per_pixel" type: "Scale" bottom: "per_row" top: "per_pixel"
        scale_param { axis: 1 num_axes: -1 bias_term: true } }
layer { name: "by_input" type: "Scale" bottom: "per_pixel" bottom: "factor" top: "by_input" scale_param { axis: 0 } }
layer { name: "bias" type: "Bias" bottom: "by_input" top: "bias" }
"""
SCALE_FORMS_BLOBS = {"per_channel": [(3,), (3,)], "per_row": [(4,)], "per_pixel": [(3, 4, 5), (3, 4, 5)],
                     "bias": [(3,)]}


def scale_forms_reference(text):
    """OpenCV has no Bias layer: a Scale with bias_term whose factors are 1 adds the same blob."""
    return text.replace('type: "Bias" bottom: "by_input" top: "bias" }',
                        'type: "Scale" bottom: "by_input" top: "bias" scale_param { bias_term: true } }')


def scale_forms_reference_blobs(blobs):
    blobs = dict(blobs)
    blobs["bias"] = [np.ones(3, np.float32), blobs["bias"][0]]
    return blobs


SHAPES = """
name: "shapes"
input: "data"
input_shape { dim: 1 dim: 4 dim: 3 dim: 6 }
layer { name: "flat_mid" type: "Flatten" bottom: "data" top: "flat_mid" flatten_param { axis: 1 end_axis: 2 } }
layer { name: "soft_last" type: "Softmax" bottom: "flat_mid" top: "soft_last" softmax_param { axis: -1 } }
layer { name: "reshape" type: "Reshape" bottom: "soft_last" top: "reshape"
        reshape_param { shape { dim: 0 dim: 2 dim: -1 dim: 3 } } }
layer { name: "soft_ch" type: "Softmax" bottom: "reshape" top: "soft_ch" }
layer { name: "reshape_axis" type: "Reshape" bottom: "soft_ch" top: "reshape_axis"
        reshape_param { shape { dim: 6 dim: 2 } axis: 2 num_axes: 1 } }
layer { name: "flat_all" type: "Flatten" bottom: "reshape_axis" top: "flat_all" }
layer { name: "ip_axis2" type: "InnerProduct" bottom: "reshape" top: "ip_axis2"
        inner_product_param { num_output: 4 axis: 2 } }
layer { name: "ip_t" type: "InnerProduct" bottom: "flat_all" top: "ip_t"
        inner_product_param { num_output: 5 transpose: true } }
layer { name: "permute" type: "Permute" bottom: "ip_axis2" top: "permute" permute_param { order: 0 order: 2 order: 1 } }
"""
SHAPES_BLOBS = {"ip_axis2": [(4, 36), (4,)], "ip_t": [(72, 5), (5,)]}


def shapes_reference(text):
    """OpenCV ignores InnerProduct `transpose`: the same weights stored as (N, K) without it."""
    return text.replace("num_output: 5 transpose: true", "num_output: 5")


def shapes_reference_blobs(blobs):
    blobs = dict(blobs)
    blobs["ip_t"] = [blobs["ip_t"][0].T.copy(), blobs["ip_t"][1]]
    return blobs


INPLACE_SPLIT = """
name: "inplace_split"
input: "data"
input_dim: 1 input_dim: 2 input_dim: 5 input_dim: 5
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "drop" type: "Dropout" bottom: "conv" top: "conv" dropout_param { dropout_ratio: 0.5 } }
layer { name: "split" type: "Split" bottom: "conv" top: "branch_a" top: "branch_b" }
layer { name: "tanh" type: "TanH" bottom: "branch_a" top: "branch_a" }
layer { name: "sig" type: "Sigmoid" bottom: "branch_b" top: "sig" }
layer { name: "join" type: "Eltwise" bottom: "branch_a" bottom: "sig" top: "join" }
layer { name: "fc" type: "InnerProduct" bottom: "join" top: "fc" inner_product_param { num_output: 3 } }
layer { name: "fc_relu" type: "ReLU" bottom: "fc" top: "fc" relu_param { negative_slope: 0.2 } }
"""
INPLACE_BLOBS = {"conv": [(4, 2, 3, 3), (4,)], "fc": [(3, 36), (3,)]}

TRAIN_VAL = """
name: "train_val"
layer { name: "mnist" type: "Data" top: "data" top: "label" include { phase: TRAIN }
        transform_param { scale: 0.00390625 crop_size: 10 } data_param { source: "train_lmdb" batch_size: 64 backend: LMDB } }
layer { name: "mnist_test" type: "Data" top: "data" top: "label" include { phase: TEST }
        transform_param { scale: 0.00390625 crop_size: 10 } data_param { source: "test_lmdb" batch_size: 100 backend: LMDB } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" param { lr_mult: 1 } param { lr_mult: 2 }
        convolution_param { num_output: 3 kernel_size: 3 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "drop_train" type: "Dropout" bottom: "conv1" top: "conv1" exclude { phase: TEST } }
layer { name: "ip1" type: "InnerProduct" bottom: "conv1" top: "ip1" inner_product_param { num_output: 4 } }
layer { name: "accuracy" type: "Accuracy" bottom: "ip1" bottom: "label" top: "accuracy" include { phase: TEST } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip1" bottom: "label" top: "loss" }
"""
TRAIN_VAL_BLOBS = {"conv1": [(3, 1, 3, 3), (3,)], "ip1": [(4, 192), (4,)]}


def train_val_reference(text):
    """OpenCV cannot read LMDB data layers: the deploy form, an Input layer and no loss."""
    deploy = """
name: "train_val"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 10 dim: 10 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 3 kernel_size: 3 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "ip1" type: "InnerProduct" bottom: "conv1" top: "ip1" inner_product_param { num_output: 4 } }
"""
    return deploy


ACTIVATIONS = """
name: "activations"
input: "data"
input_shape { dim: 1 dim: 3 dim: 4 dim: 5 }
layer { name: "prelu" type: "PReLU" bottom: "data" top: "prelu" }
layer { name: "prelu_shared" type: "PReLU" bottom: "data" top: "prelu_shared" prelu_param { channel_shared: true } }
layer { name: "abs" type: "AbsVal" bottom: "data" top: "abs" }
layer { name: "swish" type: "Swish" bottom: "data" top: "swish" swish_param { beta: 1.5 } }
layer { name: "swish1" type: "Swish" bottom: "data" top: "swish1" }
layer { name: "relu6_in" type: "Power" bottom: "data" top: "relu6_in" power_param { scale: 5 } }
layer { name: "relu6" type: "ReLU6" bottom: "relu6_in" top: "relu6" }
layer { name: "square" type: "Power" bottom: "data" top: "square" power_param { power: 2 scale: 0.5 shift: 1 } }
layer { name: "affine" type: "Power" bottom: "data" top: "affine" power_param { scale: -2 shift: 0.25 } }
layer { name: "ones" type: "Power" bottom: "data" top: "ones" power_param { power: 0 } }
"""
ACTIVATIONS_BLOBS = {"prelu": [(3,)], "prelu_shared": [()]}


def activations_reference(text):
    """OpenCV's Swish ignores beta: x * sigmoid(beta * x) spelled as Power, Sigmoid and Eltwise PROD."""
    return text.replace(
        'layer { name: "swish" type: "Swish" bottom: "data" top: "swish" swish_param { beta: 1.5 } }',
        'layer { name: "swish_scaled" type: "Power" bottom: "data" top: "swish_scaled" power_param { scale: 1.5 } }\n'
        'layer { name: "swish_gate" type: "Sigmoid" bottom: "swish_scaled" top: "swish_gate" }\n'
        'layer { name: "swish" type: "Eltwise" bottom: "data" bottom: "swish_gate" top: "swish" eltwise_param { operation: PROD } }')


def activations_reference_blobs(blobs):
    """OpenCV cannot read the 0-d blob Caffe writes for a shared slope: the same value as shape (1,)."""
    return {**blobs, "prelu_shared": [blobs["prelu_shared"][0].reshape(1)]}

SSD_HEAD = """
name: "ssd_head"
input: "data"
input_shape { dim: 1 dim: 3 dim: 20 dim: 20 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 stride: 2 } }
layer { name: "conv_relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "loc" type: "Convolution" bottom: "conv" top: "loc" convolution_param { num_output: 8 kernel_size: 3 pad: 1 } }
layer { name: "loc_perm" type: "Permute" bottom: "loc" top: "loc_perm" permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "loc_flat" type: "Flatten" bottom: "loc_perm" top: "loc_flat" flatten_param { axis: 1 } }
layer { name: "priors" type: "PriorBox" bottom: "conv" bottom: "data" top: "priors"
        prior_box_param { min_size: 4 max_size: 9 aspect_ratio: 2 flip: true clip: true
                          variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 } }
layer { name: "priors2" type: "PriorBox" bottom: "loc" bottom: "data" top: "priors2"
        prior_box_param { min_size: 6 aspect_ratio: 2 aspect_ratio: 3 flip: false variance: 0.1 step: 2.5 offset: 0.25 } }
"""
SSD_HEAD_BLOBS = {"conv": [(4, 3, 3, 3), (4,)], "loc": [(8, 4, 3, 3), (8,)]}


def ssd_head_reference(text):
    """OpenCV's PriorBox clips unless told not to (SSD's default is clip: false): say it."""
    return text.replace("flip: false variance: 0.1", "flip: false clip: false variance: 0.1")

CLIP = """
name: "clip"
input: "data"
input_shape { dim: 1 dim: 3 dim: 4 dim: 5 }
layer { name: "clip" type: "Clip" bottom: "data" top: "clip" clip_param { min: -0.5 max: 0.75 } }
layer { name: "clip_pos" type: "Clip" bottom: "data" top: "clip_pos" clip_param { min: 0.1 max: 2 } }
"""


def clip_reference(inputs, blobs):
    x = inputs["data"]
    return {"clip": np.clip(x, -0.5, 0.75), "clip_pos": np.clip(x, 0.1, 2.0)}


REDUCTION = """
name: "reduction"
input: "data"
input_shape { dim: 1 dim: 3 dim: 4 dim: 5 }
layer { name: "sum" type: "Reduction" bottom: "data" top: "sum" reduction_param { operation: SUM axis: 1 } }
layer { name: "asum" type: "Reduction" bottom: "data" top: "asum" reduction_param { operation: ASUM axis: 2 coeff: 0.5 } }
layer { name: "sumsq" type: "Reduction" bottom: "data" top: "sumsq" reduction_param { operation: SUMSQ axis: -1 } }
layer { name: "mean" type: "Reduction" bottom: "data" top: "mean" reduction_param { operation: MEAN axis: 1 coeff: 3 } }
"""


def reduction_reference(inputs, blobs):
    """Caffe's Reduction: every axis from `axis` on is reduced, the result times coeff."""
    x = inputs["data"].astype(np.float64)
    tail = lambda a, axis: a.reshape(a.shape[:axis] + (-1,))
    return {"sum": tail(x, 1).sum(-1), "asum": 0.5 * np.abs(tail(x, 2)).sum(-1),
            "sumsq": (tail(x, 3) ** 2).sum(-1), "mean": 3 * tail(x, 1).mean(-1)}


MATH = """
name: "math"
input: "data"
input_shape { dim: 1 dim: 3 dim: 4 dim: 5 }
layer { name: "elu" type: "ELU" bottom: "data" top: "elu" elu_param { alpha: 0.7 } }
layer { name: "bnll" type: "BNLL" bottom: "data" top: "bnll" }
layer { name: "exp" type: "Exp" bottom: "data" top: "exp" exp_param { scale: 0.5 shift: 0.2 } }
layer { name: "exp2" type: "Exp" bottom: "data" top: "exp2" exp_param { base: 2 scale: -1 shift: 0.5 } }
layer { name: "positive" type: "Power" bottom: "bnll" top: "positive" power_param { shift: 0.1 } }
layer { name: "log" type: "Log" bottom: "positive" top: "log" }
layer { name: "log10" type: "Log" bottom: "positive" top: "log10" log_param { base: 10 scale: 2 shift: 0.5 } }
layer { name: "pow" type: "Power" bottom: "positive" top: "pow" power_param { power: 1.5 scale: 0.5 shift: 0.25 } }
layer { name: "rsqrt" type: "Power" bottom: "positive" top: "rsqrt" power_param { power: -0.5 } }
"""

def math_reference(text):
    """OpenCV's Log ignores base, scale and shift: log10(2p + 0.5) as Power, Log, Power 1/ln 10."""
    return text.replace(
        'layer { name: "log10" type: "Log" bottom: "positive" top: "log10" log_param { base: 10 scale: 2 shift: 0.5 } }',
        'layer { name: "log10_in" type: "Power" bottom: "positive" top: "log10_in" power_param { scale: 2 shift: 0.5 } }\n'
        'layer { name: "log10_ln" type: "Log" bottom: "log10_in" top: "log10_ln" }\n'
        f'layer {{ name: "log10" type: "Power" bottom: "log10_ln" top: "log10" power_param {{ scale: {float(1 / np.log(10))!r} }} }}')


MVN = """
name: "mvn"
input: "data"
input_shape { dim: 1 dim: 3 dim: 4 dim: 5 }
layer { name: "mvn" type: "MVN" bottom: "data" top: "mvn" }
layer { name: "mean_only" type: "MVN" bottom: "data" top: "mean_only" mvn_param { normalize_variance: false } }
layer { name: "across" type: "MVN" bottom: "data" top: "across" mvn_param { across_channels: true eps: 0.01 } }
"""

def mvn_reference(inputs, blobs):
    """Caffe's MVN (float64): (x - mean) / (sqrt(variance) + eps); OpenCV adds eps under the root."""
    x = inputs["data"].astype(np.float64)

    def mvn(axes, eps, variance=True):
        c = x - x.mean(axis=axes, keepdims=True)
        return c / (np.sqrt((c ** 2).mean(axis=axes, keepdims=True)) + eps) if variance else c
    return {"mvn": mvn((2, 3), 1e-9), "mean_only": mvn((2, 3), 1e-9, False), "across": mvn((1, 2, 3), 0.01)}


LRN = """
name: "lrn"
input: "data"
input_shape { dim: 1 dim: 7 dim: 5 dim: 6 }
layer { name: "lrn_default" type: "LRN" bottom: "data" top: "lrn_default" }
layer { name: "lrn_k" type: "LRN" bottom: "data" top: "lrn_k" lrn_param { local_size: 3 alpha: 0.5 beta: 0.6 k: 2 } }
layer { name: "lrn_alexnet" type: "LRN" bottom: "data" top: "lrn_alexnet" lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 } }
layer { name: "lrn_within" type: "LRN" bottom: "data" top: "lrn_within"
        lrn_param { local_size: 3 alpha: 2 beta: 0.75 norm_region: WITHIN_CHANNEL } }
"""


def lrn_reference(text):
    """OpenCV ignores LRN's k (taking 1) and, with no lrn_param, Caffe's defaults (FORMATS.md).
    x / (k + a/n s)^b = k^-b * x / (1 + (a/k)/n s)^b: LRN with alpha/k, then Power scale k^-b.
    The parameterless LRN gets Caffe's defaults written out."""
    text = text.replace('top: "lrn_default" }',
                        'top: "lrn_default" lrn_param { local_size: 5 alpha: 1 beta: 0.75 k: 1 } }')
    return text.replace(
        'layer { name: "lrn_k" type: "LRN" bottom: "data" top: "lrn_k" lrn_param { local_size: 3 alpha: 0.5 beta: 0.6 k: 2 } }',
        'layer { name: "lrn_k_unit" type: "LRN" bottom: "data" top: "lrn_k_unit" lrn_param { local_size: 3 alpha: 0.25 beta: 0.6 } }\n'
        f'layer {{ name: "lrn_k" type: "Power" bottom: "lrn_k_unit" top: "lrn_k" power_param {{ scale: {2 ** -0.6!r} }} }}')
INCEPTION = """
name: "inception"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 4 dim: 9 dim: 9 } } }
layer { name: "b1" type: "Convolution" bottom: "data" top: "b1" convolution_param { num_output: 3 kernel_size: 1 } }
layer { name: "b3" type: "Convolution" bottom: "data" top: "b3" convolution_param { num_output: 5 kernel_size: 3 pad: 1 } }
layer { name: "bpool" type: "Pooling" bottom: "data" top: "bpool" pooling_param { pool: MAX kernel_size: 3 stride: 1 pad: 1 } }
layer { name: "mixed" type: "Concat" bottom: "b1" bottom: "b3" bottom: "bpool" top: "mixed" }
layer { name: "mixed_relu" type: "ReLU" bottom: "mixed" top: "mixed" }
layer { name: "parts" type: "Slice" bottom: "mixed" top: "p0" top: "p1" top: "p2" slice_param { axis: 1 slice_point: 2 slice_point: 7 } }
layer { name: "halves" type: "Slice" bottom: "p1" top: "h0" top: "h1" slice_param { axis: 3 slice_point: 4 } }
layer { name: "thirds" type: "Slice" bottom: "p2" top: "t0" top: "t1" top: "t2" slice_param { slice_dim: 2 } }
layer { name: "rows" type: "Concat" bottom: "t2" bottom: "t0" bottom: "t1" top: "rows" concat_param { concat_dim: 2 } }
layer { name: "cols" type: "Concat" bottom: "h1" bottom: "h0" top: "cols" concat_param { axis: -1 } }
layer { name: "p0_flat" type: "Flatten" bottom: "p0" top: "p0_flat" }
layer { name: "rows_flat" type: "Flatten" bottom: "rows" top: "rows_flat" }
layer { name: "cols_flat" type: "Flatten" bottom: "cols" top: "cols_flat" }
layer { name: "all" type: "Concat" bottom: "p0_flat" bottom: "rows_flat" bottom: "cols_flat" top: "all" concat_param { axis: 1 } }
"""
INCEPTION_BLOBS = {"b1": [(3, 4, 1, 1), (3,)], "b3": [(5, 4, 3, 3), (5,)]}


def inception_reference(text):
    """OpenCV ignores the legacy concat_dim (FORMATS.md) and slice_dim: the same axes as `axis`."""
    return text.replace("concat_param { concat_dim: 2 }", "concat_param { axis: 2 }").replace(
        "slice_param { slice_dim: 2 }", "slice_param { axis: 2 }")


FCN = """
name: "fcn"
input: "data"
input_shape { dim: 1 dim: 3 dim: 16 dim: 16 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 4 kernel_size: 3 pad: 5 } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "score" type: "Convolution" bottom: "pool1" top: "score" convolution_param { num_output: 2 kernel_size: 1 } }
layer { name: "up" type: "Deconvolution" bottom: "score" top: "up"
        convolution_param { num_output: 2 kernel_size: 4 stride: 2 bias_term: false } }
layer { name: "up_grouped" type: "Deconvolution" bottom: "score" top: "up_grouped"
        convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad: 1 group: 2 dilation: 2 } }
layer { name: "crop" type: "Crop" bottom: "up" bottom: "data" top: "crop" crop_param { axis: 2 offset: 5 } }
layer { name: "crop_each" type: "Crop" bottom: "up_grouped" bottom: "score" top: "crop_each" crop_param { axis: 1 offset: 1 offset: 2 offset: 3 } }
"""
FCN_BLOBS = {"conv1": [(4, 3, 3, 3), (4,)], "score": [(2, 4, 1, 1), (2,)], "up": [(2, 2, 4, 4)],
             "up_grouped": [(2, 2, 3, 3), (4,)]}


def fcn_reference(text):
    """OpenCV ignores a Deconvolution's dilation: the same kernel spread out with zeros (5x5)."""
    return text.replace("num_output: 4 kernel_size: 3 stride: 2 pad: 1 group: 2 dilation: 2",
                        "num_output: 4 kernel_size: 5 stride: 2 pad: 1 group: 2")


def fcn_reference_blobs(blobs):
    w, b = blobs["up_grouped"]
    spread = np.zeros(w.shape[:2] + (5, 5), np.float32)
    spread[:, :, ::2, ::2] = w
    return {**blobs, "up_grouped": [spread, b]}

TILE = """
name: "tile"
input: "data"
input_shape { dim: 1 dim: 2 dim: 3 dim: 4 }
layer { name: "tile_c" type: "Tile" bottom: "data" top: "tile_c" tile_param { tiles: 3 } }
layer { name: "tile_w" type: "Tile" bottom: "tile_c" top: "tile_w" tile_param { axis: -1 tiles: 2 } }
"""


def tile_reference(inputs, blobs):
    """Caffe's Tile: `tiles` copies of the blob along `axis` (OpenCV's Tile reads other params)."""
    x = inputs["data"]
    c = np.tile(x, (1, 3, 1, 1))
    return {"tile_w": np.tile(c, (1, 1, 1, 2))}


ERROR_UNKNOWN = """
name: "unknown_layer"
input: "data"
input_shape { dim: 1 dim: 2 dim: 4 dim: 4 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 2 kernel_size: 1 } }
layer { name: "mystery" type: "FancyNewThing" bottom: "conv" top: "out" }
"""
ERROR_PYTHON = """
name: "python_layer"
input: "data"
input_shape { dim: 1 dim: 2 dim: 4 dim: 4 }
layer { name: "proposal" type: "Python" bottom: "data" top: "out" python_param { module: "rpn" layer: "ProposalLayer" } }
"""
# A two-bottom Upsample whose second bottom is not a Pooling mask (other forks' bilinear
# Upsample has this shape): refused naming the layer, not unpooled by garbage indices.
ERROR_UPSAMPLE_NOT_MASK = """
name: "upsample_not_mask"
input: "data"
input_shape { dim: 1 dim: 2 dim: 4 dim: 4 }
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "up" type: "Upsample" bottom: "pool" bottom: "pool" top: "up" upsample_param { scale: 2 } }
"""

ERROR_MISSING_BLOB = """
name: "missing_blob"
input: "data"
input_shape { dim: 1 dim: 2 dim: 4 dim: 4 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 2 kernel_size: 1 } }
layer { name: "fc_missing" type: "InnerProduct" bottom: "conv" top: "fc" inner_product_param { num_output: 3 } }
"""
ERROR_BAD_SHAPE = """
name: "bad_blob_shape"
input: "data"
input_shape { dim: 1 dim: 2 dim: 4 dim: 4 }
layer { name: "conv_bad" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 2 kernel_size: 3 } }
"""
ERROR_NO_BOTTOM = """
name: "no_bottom"
input: "data"
input_shape { dim: 1 dim: 2 dim: 4 dim: 4 }
layer { name: "relu_orphan" type: "ReLU" bottom: "nothing_makes_this" top: "out" }
"""
ERROR_SYNTAX = """
name: "syntax_error"
input: "data"
input_shape { dim: 1 dim: 2 dim: 4 dim: 4 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 2 kernel_size: 1 } }
layer { name: "broken" type: "ReLU" bottom: "conv" top: "out" relu_param { negative_slope: 0.1 }
layer { name: "after" type: "ReLU" bottom: "out" top: "out2" }
"""

# --------------------------------------------------------------------------------------------
# Issue 4's remaining layers. Where OpenCV lacks a layer, the reference is numpy following the
# layer's C++ source in BVLC Caffe (or the fork that defines it), named in each function.
# --------------------------------------------------------------------------------------------

THRESHOLD = """
name: "threshold"
input: "data"
input_shape { dim: 1 dim: 3 dim: 4 dim: 5 }
layer { name: "above_zero" type: "Threshold" bottom: "data" top: "above_zero" }
layer { name: "above_half" type: "Threshold" bottom: "data" top: "above_half" threshold_param { threshold: 0.5 } }
"""


def threshold_reference(inputs, blobs):
    """threshold_layer.cpp: top = bottom > threshold ? 1 : 0 (strictly greater)."""
    x = inputs["data"]
    return {"above_zero": (x > 0).astype(np.float32), "above_half": (x > 0.5).astype(np.float32)}


ARGMAX = """
name: "argmax"
input: "data"
input_shape { dim: 1 dim: 5 dim: 3 dim: 4 }
layer { name: "class" type: "ArgMax" bottom: "data" top: "class" argmax_param { axis: 1 } }
layer { name: "class_score" type: "ArgMax" bottom: "data" top: "class_score" argmax_param { axis: 1 out_max_val: true } }
layer { name: "along_w" type: "ArgMax" bottom: "data" top: "along_w" argmax_param { axis: -1 } }
layer { name: "flat" type: "ArgMax" bottom: "data" top: "flat" }
layer { name: "flat_pair" type: "ArgMax" bottom: "data" top: "flat_pair" argmax_param { out_max_val: true } }
"""


def argmax_reference(inputs, blobs):
    """argmax_layer.cpp (top_k 1): with an axis, the index (or with out_max_val the value)
    along it, that axis kept with size 1; without, over the flattened (C, H, W) per sample,
    shape (N, 1, 1, 1), or (N, 2, 1, 1) holding (index, value) with out_max_val. The random
    inputs have no ties (Caffe would take the last index of equal values)."""
    x = inputs["data"].astype(np.float64)
    flat = x.reshape(x.shape[0], -1)
    idx = flat.argmax(1).astype(np.float64)
    return {"class": x.argmax(1)[:, None], "class_score": x.max(1, keepdims=True),
            "along_w": x.argmax(-1)[..., None],
            "flat": idx.reshape(-1, 1, 1, 1),
            "flat_pair": np.stack([idx, flat.max(1)], 1).reshape(-1, 2, 1, 1)}


ARGMAX_TOPK = """
name: "argmax_topk"
input: "data"
input_shape { dim: 1 dim: 5 dim: 3 dim: 4 }
layer { name: "top3" type: "ArgMax" bottom: "data" top: "top3" argmax_param { axis: 1 top_k: 3 } }
layer { name: "top3_values" type: "ArgMax" bottom: "data" top: "top3_values" argmax_param { axis: 1 top_k: 3 out_max_val: true } }
layer { name: "top2_w" type: "ArgMax" bottom: "data" top: "top2_w" argmax_param { axis: -1 top_k: 2 } }
layer { name: "flat_top4" type: "ArgMax" bottom: "data" top: "flat_top4" argmax_param { top_k: 4 } }
layer { name: "flat_top4_pair" type: "ArgMax" bottom: "data" top: "flat_top4_pair" argmax_param { top_k: 4 out_max_val: true } }
"""


def tied_input(rng, shape):
    """Small integers: many equal values, so the order Caffe gives ties shows."""
    return rng.integers(0, 6, shape).astype(np.float32)


def caffe_top_k(x, axis, k):
    """argmax_layer.cpp: (value, index) pairs std::partial_sort'ed with std::greater, so by
    value descending and, among equal values, by index descending. Returns (indices, values)."""
    moved = np.moveaxis(x, axis, -1)
    n = moved.shape[-1]
    index = np.broadcast_to(np.arange(n), moved.shape)
    order = np.lexsort((-index, -moved), axis=-1)[..., :k]
    return (np.moveaxis(np.take_along_axis(index, order, -1), -1, axis).astype(np.float64),
            np.moveaxis(np.take_along_axis(moved, order, -1), -1, axis))


def argmax_topk_reference(inputs, blobs):
    """argmax_layer.cpp with top_k: along an axis the indices (or with out_max_val the values),
    that axis of size top_k; without an axis over the flattened (C, H, W) per sample, shape
    (N, 1, top_k, 1), or (N, 2, top_k, 1) holding indices then values with out_max_val."""
    x = inputs["data"].astype(np.float64)
    flat_i, flat_v = caffe_top_k(x.reshape(x.shape[0], -1), 1, 4)
    return {"top3": caffe_top_k(x, 1, 3)[0], "top3_values": caffe_top_k(x, 1, 3)[1],
            "top2_w": caffe_top_k(x, 3, 2)[0],
            "flat_top4": flat_i.reshape(-1, 1, 4, 1),
            "flat_top4_pair": np.stack([flat_i, flat_v], 1).reshape(-1, 2, 4, 1)}


EMBED = """
name: "embed"
input: "words"
input_shape { dim: 1 dim: 6 }
layer { name: "embed" type: "Embed" bottom: "words" top: "embed" embed_param { num_output: 4 input_dim: 7 } }
layer { name: "embed_nobias" type: "Embed" bottom: "words" top: "embed_nobias"
        embed_param { num_output: 3 input_dim: 7 bias_term: false } }
"""
EMBED_BLOBS = {"embed": [(7, 4), (4,)], "embed_nobias": [(7, 3)]}


def embed_input(rng, shape):
    """Indices below input_dim 7 with fractions: Caffe truncates them (static_cast<int>)."""
    return rng.integers(0, 7, shape) + rng.uniform(0, 0.9, shape)


def embed_reference(inputs, blobs):
    """embed_layer.cpp: row static_cast<int>(x) of the (input_dim, num_output) weight, plus
    the bias; the top is the bottom's shape with num_output appended."""
    idx = inputs["words"].astype(np.int64)
    w, b = blobs["embed"]
    return {"embed": w[idx] + b, "embed_nobias": blobs["embed_nobias"][0][idx]}


NORMALIZE = """
name: "normalize"
input: "data"
input_shape { dim: 1 dim: 4 dim: 5 dim: 6 }
layer { name: "norm_all" type: "Normalize" bottom: "data" top: "norm_all" }
layer { name: "norm_pixel" type: "Normalize" bottom: "data" top: "norm_pixel"
        norm_param { across_spatial: false channel_shared: false } }
layer { name: "norm_eps" type: "Normalize" bottom: "data" top: "norm_eps"
        norm_param { across_spatial: false channel_shared: true eps: 0.5 } }
"""
NORMALIZE_BLOBS = {"norm_all": [(1,)], "norm_pixel": [(4,)], "norm_eps": [(1,)]}

SHUFFLE_CHANNEL = """
name: "shuffle_channel"
input: "data"
input_shape { dim: 1 dim: 6 dim: 3 dim: 4 }
layer { name: "shuffle2" type: "ShuffleChannel" bottom: "data" top: "shuffle2" shuffle_channel_param { group: 2 } }
layer { name: "shuffle3" type: "ShuffleChannel" bottom: "shuffle2" top: "shuffle3" shuffle_channel_param { group: 3 } }
"""

INTERP = """
name: "interp"
input: "data"
input_shape { dim: 1 dim: 3 dim: 7 dim: 9 }
layer { name: "zoom" type: "Interp" bottom: "data" top: "zoom" interp_param { zoom_factor: 3 } }
layer { name: "sized" type: "Interp" bottom: "data" top: "sized" interp_param { height: 5 width: 12 } }
"""

INTERP_CROP = """
name: "interp_crop"
input: "data"
input_shape { dim: 1 dim: 3 dim: 9 dim: 10 }
layer { name: "shrink" type: "Interp" bottom: "data" top: "shrink" interp_param { shrink_factor: 2 } }
layer { name: "shrink_zoom" type: "Interp" bottom: "data" top: "shrink_zoom" interp_param { shrink_factor: 3 zoom_factor: 2 } }
layer { name: "cropped" type: "Interp" bottom: "data" top: "cropped" interp_param { zoom_factor: 2 pad_beg: -1 pad_end: -2 } }
"""


def caffe_interp2(x, out_h, out_w):
    """caffe_cpu_interp2 (DeepLab util/interp.cpp), float32 like Caffe: position = float(ratio *
    output position) with ratio = (in - 1) / (out - 1), the upper neighbour clamped."""
    n, c, h, w = x.shape
    if (out_h, out_w) == (h, w):
        return x.copy()
    rh = np.float32((h - 1) / (out_h - 1)) if out_h > 1 else np.float32(0)
    rw = np.float32((w - 1) / (out_w - 1)) if out_w > 1 else np.float32(0)
    out = np.zeros((n, c, out_h, out_w), np.float64)
    for i in range(out_h):
        hr = np.float32(rh * np.float32(i))
        h0 = int(hr)
        hp = 1 if h0 < h - 1 else 0
        lh = float(hr - h0)
        for j in range(out_w):
            wr = np.float32(rw * np.float32(j))
            w0 = int(wr)
            wp = 1 if w0 < w - 1 else 0
            lw = float(wr - w0)
            out[:, :, i, j] = (1 - lh) * ((1 - lw) * x[:, :, h0, w0] + lw * x[:, :, h0, w0 + wp]) + \
                lh * ((1 - lw) * x[:, :, h0 + hp, w0] + lw * x[:, :, h0 + hp, w0 + wp])
    return out


def interp_crop_reference(inputs, blobs):
    """DeepLab's interp_layer.cpp: the input cut by -pad_beg / -pad_end cells, output size
    (H'-1)/shrink + 1, then H' + (H'-1)(zoom-1), resized by caffe_cpu_interp2. OpenCV's Interp
    ignores shrink_factor and the pads."""
    x = inputs["data"].astype(np.float64)

    def size(h, shrink=1, zoom=1):
        h = (h - 1) // shrink + 1
        return h + (h - 1) * (zoom - 1)
    cut = x[:, :, 1:-2, 1:-2]
    return {"shrink": caffe_interp2(x, size(9, 2), size(10, 2)),
            "shrink_zoom": caffe_interp2(x, size(9, 3, 2), size(10, 3, 2)),
            "cropped": caffe_interp2(cut, size(6, 1, 2), size(7, 1, 2))}


# DeepLab's Interp with a second bottom giving the output size (an internal blob and a net
# input), with crops, and by height / width. The caffemodel is written as DeepLab's Caffe
# writes it: interp_param at field 143 (`deeplab_binary`), which BVLC's caffe.proto (and
# Ferry's) gives to input_param.
INTERP_DEEPLAB = """
name: "interp_deeplab"
input: "data"
input_shape { dim: 1 dim: 3 dim: 9 dim: 10 }
input: "guide"
input_shape { dim: 1 dim: 1 dim: 11 dim: 7 }
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "up_to_data" type: "Interp" bottom: "pool" bottom: "data" top: "up_to_data" }
layer { name: "to_guide" type: "Interp" bottom: "data" bottom: "guide" top: "to_guide" interp_param { pad_beg: -1 pad_end: -1 } }
layer { name: "sized" type: "Interp" bottom: "data" top: "sized" interp_param { height: 6 width: 13 } }
layer { name: "zoom_crop" type: "Interp" bottom: "data" top: "zoom_crop" interp_param { zoom_factor: 2 pad_beg: -1 pad_end: -2 } }
"""


def interp_deeplab_reference(inputs, blobs):
    """DeepLab's interp_layer.cpp: with two bottoms the output takes the second's H and W, after
    the crops; caffe_cpu_interp2 as in interp_crop_reference. The pooling is pooling_layer.cpp."""
    x = inputs["data"].astype(np.float64)
    pool = caffe_pool(x, "MAX", (2, 2), (2, 2))
    return {"up_to_data": caffe_interp2(pool, 9, 10), "to_guide": caffe_interp2(x[:, :, 1:-1, 1:-1], 11, 7),
            "sized": caffe_interp2(x, 6, 13), "zoom_crop": caffe_interp2(x[:, :, 1:-2, 1:-2], 11, 13)}


def interp_deeplab_input_check(inputs, blobs, text):
    """The numpy Interp must agree with OpenCV's where OpenCV computes the same thing (height
    and width given, no crop); OpenCV refuses a second bottom and ignores the pads."""
    with tempfile.TemporaryDirectory() as tmp:
        rp, rm = pathlib.Path(tmp) / "net.prototxt", pathlib.Path(tmp) / "net.caffemodel"
        rp.write_text('input: "data"\ninput_shape { dim: 1 dim: 3 dim: 9 dim: 10 }\n'
                      'layer { name: "sized" type: "Interp" bottom: "data" top: "sized" interp_param { height: 6 width: 13 } }\n')
        rm.write_bytes(b"")
        (theirs,) = opencv_outputs(rp, rm, {"data": inputs["data"]}, [("sized", "sized")])
    ours = caffe_interp2(inputs["data"].astype(np.float64), 6, 13)
    if np.abs(ours - theirs).max() > 1e-5:
        raise SystemExit(f"interp_deeplab: numpy and OpenCV Interp disagree by {np.abs(ours - theirs).max()}")
    return True


UPSAMPLE = """
name: "upsample"
input: "data"
input_shape { dim: 1 dim: 2 dim: 3 dim: 4 }
layer { name: "up2" type: "Upsample" bottom: "data" top: "up2" upsample_param { scale: 2 } }
layer { name: "up_hw" type: "Upsample" bottom: "data" top: "up_hw" upsample_param { scale_h: 3 scale_w: 1 } }
"""


def upsample_reference(inputs, blobs):
    """The YOLOv3 forks' upsample_layer.cpp (one bottom): top[y][x] = bottom[y / s][x / s]."""
    x = inputs["data"]
    return {"up2": x.repeat(2, 2).repeat(2, 3), "up_hw": x.repeat(3, 2)}


# The SegNet / ENet forks' max unpooling: a MAX Pooling's second top (the mask) read by an
# Upsample with two bottoms. Values put back are not the pooled ones (TanH; the max plus the
# window's average), so a wrong index shows; the 3x3 stride 2 windows overlap, so two windows
# can pick one cell with different values (the later one wins); the odd-sized input uses pad_out.
UPSAMPLE_UNPOOL = """
name: "upsample_unpool"
input: "data"
input_shape { dim: 1 dim: 2 dim: 8 dim: 10 }
input: "odd"
input_shape { dim: 1 dim: 2 dim: 7 dim: 9 }
layer { name: "pool1" type: "Pooling" bottom: "data" top: "pool1" top: "pool1_mask" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "pool1_tanh" type: "TanH" bottom: "pool1" top: "pool1_tanh" }
layer { name: "unpool1" type: "Upsample" bottom: "pool1_tanh" bottom: "pool1_mask" top: "unpool1" upsample_param { scale: 2 } }
layer { name: "pool2" type: "Pooling" bottom: "data" top: "pool2" top: "pool2_mask" pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "pool2_ave" type: "Pooling" bottom: "data" top: "pool2_ave" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "pool2_sum" type: "Eltwise" bottom: "pool2" bottom: "pool2_ave" top: "pool2_sum" }
layer { name: "unpool2" type: "Upsample" bottom: "pool2_sum" bottom: "pool2_mask" top: "unpool2" upsample_param { upsample_h: 8 upsample_w: 10 } }
layer { name: "pool3" type: "Pooling" bottom: "odd" top: "pool3" top: "pool3_mask" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "unpool3" type: "Upsample" bottom: "pool3" bottom: "pool3_mask" top: "unpool3"
        upsample_param { scale: 2 pad_out_h: true pad_out_w: true } }
"""


def caffe_pool_mask(x, k, s, p=(0, 0)):
    """pooling_layer.cpp MAX with a mask top: per window (Caffe's sizes, clipped to the input)
    the first value above every earlier one from -FLT_MAX, scanning rows then columns, and
    its index h * W + w in the plane (-1 for an empty window)."""
    n, c, h, w = x.shape
    pooled = caffe_pool(x, "MAX", k, s, p)
    mask = np.full(pooled.shape, -1.0)
    for ph in range(pooled.shape[2]):
        for pw in range(pooled.shape[3]):
            hs, ws = ph * s[0] - p[0], pw * s[1] - p[1]
            he, we = min(hs + k[0], h), min(ws + k[1], w)
            hs, ws = max(hs, 0), max(ws, 0)
            for b in range(n):
                for ch in range(c):
                    best = -np.finfo(np.float32).max
                    for i in range(hs, he):
                        for j in range(ws, we):
                            if x[b, ch, i, j] > best:
                                best, mask[b, ch, ph, pw] = x[b, ch, i, j], i * w + j
    return pooled, mask


def caffe_unpool(values, mask, out_h, out_w):
    """upsample_layer.cpp with a mask bottom: zeros, then top[mask[i]] = bottom[i] in order."""
    n, c = values.shape[:2]
    out = np.zeros((n, c, out_h * out_w))
    for b in range(n):
        for ch in range(c):
            for v, i in zip(values[b, ch].ravel(), mask[b, ch].ravel()):
                out[b, ch, int(i)] = v
    return out.reshape(n, c, out_h, out_w)


def upsample_unpool_parts(inputs):
    x, odd = inputs["data"].astype(np.float64), inputs["odd"].astype(np.float64)
    pool1, mask1 = caffe_pool_mask(x, (2, 2), (2, 2))
    pool2, mask2 = caffe_pool_mask(x, (3, 3), (2, 2), (1, 1))
    pool3, mask3 = caffe_pool_mask(odd, (2, 2), (2, 2))
    return {"pool1": (x, (2, 2), (2, 2), (0, 0), pool1, mask1, np.tanh(pool1), (8, 10)),
            "pool2": (x, (3, 3), (2, 2), (1, 1), pool2, mask2, pool2 + caffe_pool(x, "AVE", (3, 3), (2, 2), (1, 1)), (8, 10)),
            "pool3": (odd, (2, 2), (2, 2), (0, 0), pool3, mask3, pool3, (7, 9))}


def upsample_unpool_reference(inputs, blobs):
    parts = upsample_unpool_parts(inputs)
    return {f"unpool{i}": caffe_unpool(parts[f"pool{i}"][6], parts[f"pool{i}"][5], *parts[f"pool{i}"][7]) for i in (1, 2, 3)}


def upsample_unpool_input_check(inputs, blobs, text):
    """OpenCV cannot compute a Caffe pooling mask (its Caffe importer gives Pooling one output)
    nor load Upsample: the numpy masks and unpooling are checked against onnxruntime's MaxPool
    Indices (which count over the whole tensor: taken modulo H * W) and MaxUnpool (given the
    whole-tensor indices), which also take the first maximum and let a later write win."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper
    for name, (x, k, s, p, pooled, mask, values, (out_h, out_w)) in upsample_unpool_parts(inputs).items():
        n, c, h, w = x.shape
        ph, pw = pooled.shape[2:]
        # Caffe's pooled size, stated to ONNX through end pads (ceil windows clipped at the end).
        extra = [(ph - 1) * s[0] + k[0] - h - p[0], (pw - 1) * s[1] + k[1] - w - p[1]]
        graph = helper.make_graph(
            [helper.make_node("MaxPool", ["x"], ["pooled", "indices"], kernel_shape=list(k), strides=list(s),
                              pads=[p[0], p[1], max(extra[0], 0), max(extra[1], 0)]),
             helper.make_node("MaxUnpool", ["values", "full_indices", "shape"], ["unpooled"], kernel_shape=list(k),
                              strides=list(s), pads=[p[0], p[1], max(extra[0], 0), max(extra[1], 0)])],
            name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape),
                   helper.make_tensor_value_info("values", TensorProto.FLOAT, pooled.shape),
                   helper.make_tensor_value_info("full_indices", TensorProto.INT64, pooled.shape),
                   helper.make_tensor_value_info("shape", TensorProto.INT64, [4])],
            [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, None),
             helper.make_tensor_value_info("indices", TensorProto.INT64, None),
             helper.make_tensor_value_info("unpooled", TensorProto.FLOAT, None)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        plane_offsets = (np.arange(n * c) * out_h * out_w).reshape(n, c, 1, 1)
        theirs_pooled, theirs_indices, theirs_unpooled = session.run(None, {
            "x": x.astype(np.float32), "values": values.astype(np.float32),
            "full_indices": (mask + plane_offsets).astype(np.int64), "shape": np.array([n, c, out_h, out_w], np.int64)})
        if (theirs_indices % (h * w) != mask).any() or np.abs(theirs_pooled - pooled).max() > 1e-6:
            raise SystemExit(f"upsample_unpool: numpy and onnxruntime pooling masks disagree on {name}")
        ours = caffe_unpool(values, mask, out_h, out_w)
        if np.abs(theirs_unpooled - ours).max() > 1e-6:
            raise SystemExit(f"upsample_unpool: numpy and onnxruntime MaxUnpool disagree on {name}")
    return True


# The SegNet / ENet forks' BN layer: blobs scale and shift (1, C, 1, 1); INFERENCE (the
# forks' deploy form) and LEARN (the default: the running batch's own statistics).
BN_FORK = """
name: "bn_fork"
input: "data"
input_shape { dim: 1 dim: 3 dim: 5 dim: 6 }
layer { name: "bn_inference" type: "BN" bottom: "data" top: "bn_inference" bn_param { bn_mode: INFERENCE } }
layer { name: "bn_learn" type: "BN" bottom: "data" top: "bn_learn" }
layer { name: "conv" type: "Convolution" bottom: "bn_inference" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "bn_conv" type: "BN" bottom: "conv" top: "conv" bn_param { bn_mode: INFERENCE } }
"""
BN_FORK_BLOBS = {"bn_inference": [(1, 3, 1, 1), (1, 3, 1, 1)], "bn_learn": [(1, 3, 1, 1), (1, 3, 1, 1)],
                 "conv": [(4, 3, 3, 3), (4,)], "bn_conv": [(1, 4, 1, 1), (1, 4, 1, 1)]}


def bn_fork_reference(inputs, blobs):
    """bn_layer.cpp (caffe-segnet / caffe-enet): INFERENCE top = scale * x + shift per channel;
    LEARN normalizes first by the batch's mean and E(x^2) - mean^2 over N, H, W with
    var_eps 1e-9 under the square root. The convolution is numpy's (float64)."""
    x = inputs["data"].astype(np.float64)

    def affine(layer, y):
        scale, shift = (b.astype(np.float64).reshape(1, -1, 1, 1) for b in blobs[layer])
        return y * scale + shift
    mean = x.mean((0, 2, 3), keepdims=True)
    variance = (x * x).mean((0, 2, 3), keepdims=True) - mean * mean
    inference = affine("bn_inference", x)
    w, b = (a.astype(np.float64) for a in blobs["conv"])
    n, c, h, wd = inference.shape
    conv = np.zeros((n, 4, h - 2, wd - 2))
    for i in range(h - 2):
        for j in range(wd - 2):
            conv[:, :, i, j] = np.einsum("nckl,ockl->no", inference[:, :, i:i + 3, j:j + 3], w) + b
    return {"bn_learn": affine("bn_learn", (x - mean) / np.sqrt(variance + 1e-9)), "conv": affine("bn_conv", conv)}


POOLING_SPARSE = """
name: "pooling_sparse"
input: "data"
input_shape { dim: 1 dim: 2 dim: 6 dim: 7 }
layer { name: "max_sparse" type: "Pooling" bottom: "data" top: "max_sparse"
        pooling_param { pool: MAX kernel_size: 1 stride: 4 } }
layer { name: "max_sparse_tanh" type: "TanH" bottom: "max_sparse" top: "max_sparse_tanh" }
layer { name: "ave_sparse" type: "Pooling" bottom: "data" top: "ave_sparse"
        pooling_param { pool: AVE kernel_h: 2 kernel_w: 1 stride_h: 4 stride_w: 3 } }
layer { name: "max_gap" type: "Pooling" bottom: "data" top: "max_gap"
        pooling_param { pool: MAX kernel_size: 2 stride: 3 } }
"""


def caffe_pool(x, pool, k, s, p=(0, 0)):
    """pooling_layer.cpp Forward_cpu: size ceil((H + 2p - k) / s) + 1, less one when padded and
    the last window starts past H + p; MAX starts at -FLT_MAX over the window clipped to the
    input; AVE sums the clipped window and divides by the window clipped to H + p, computed
    before clipping (negative or zero for an empty window, whose sum is 0)."""
    n, c, h, w = x.shape
    out = []
    for i in range(2):
        size = (h, w)[i]
        o = int(np.ceil(np.float32(size + 2 * p[i] - k[i]) / s[i])) + 1
        if (p[0] or p[1]) and (o - 1) * s[i] >= size + p[i]:
            o -= 1
        out.append(o)
    y = np.zeros((n, c, *out), np.float64)
    for ph in range(out[0]):
        for pw in range(out[1]):
            hs, ws = ph * s[0] - p[0], pw * s[1] - p[1]
            if pool == "MAX":
                he, we = min(hs + k[0], h), min(ws + k[1], w)
                hs, ws = max(hs, 0), max(ws, 0)
                win = x[:, :, hs:he, ws:we] if he > hs and we > ws else None
                y[:, :, ph, pw] = -np.finfo(np.float32).max if win is None else win.max((2, 3))
            else:
                he, we = min(hs + k[0], h + p[0]), min(ws + k[1], w + p[1])
                count = (he - hs) * (we - ws)
                hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
                total = x[:, :, hs:he, ws:we].sum((2, 3)) if he > hs and we > ws else 0
                y[:, :, ph, pw] = total / count
    return y


def pooling_sparse_reference(inputs, blobs):
    """Kernels smaller than the stride without padding: Caffe keeps windows that start past the
    input (MAX gives -FLT_MAX there, seen through TanH as -1; AVE gives 0). OpenCV gives 0 for
    the empty MAX windows."""
    x = inputs["data"].astype(np.float64)
    return {"max_sparse_tanh": np.tanh(caffe_pool(x, "MAX", (1, 1), (4, 4))),
            "ave_sparse": caffe_pool(x, "AVE", (2, 1), (4, 3)),
            "max_gap": caffe_pool(x, "MAX", (2, 2), (3, 3))}


# An SSD-shaped net: two feature maps, location and confidence convolutions, Permute + Flatten,
# PriorBox, Concat, softmax over classes, and DetectionOutput in three configurations.
SSD_DETECTION = """
name: "ssd_detection"
input: "data"
input_shape { dim: 1 dim: 3 dim: 12 dim: 12 }
layer { name: "f1" type: "Convolution" bottom: "data" top: "f1" convolution_param { num_output: 4 kernel_size: 3 pad: 1 stride: 2 } }
layer { name: "f1_relu" type: "ReLU" bottom: "f1" top: "f1" }
layer { name: "f2" type: "Convolution" bottom: "f1" top: "f2" convolution_param { num_output: 4 kernel_size: 3 pad: 1 stride: 2 } }
layer { name: "f2_relu" type: "ReLU" bottom: "f2" top: "f2" }
layer { name: "f1_loc" type: "Convolution" bottom: "f1" top: "f1_loc" convolution_param { num_output: 16 kernel_size: 3 pad: 1 } }
layer { name: "f1_loc_perm" type: "Permute" bottom: "f1_loc" top: "f1_loc_perm" permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "f1_loc_flat" type: "Flatten" bottom: "f1_loc_perm" top: "f1_loc_flat" flatten_param { axis: 1 } }
layer { name: "f1_conf" type: "Convolution" bottom: "f1" top: "f1_conf" convolution_param { num_output: 12 kernel_size: 3 pad: 1 } }
layer { name: "f1_conf_perm" type: "Permute" bottom: "f1_conf" top: "f1_conf_perm" permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "f1_conf_flat" type: "Flatten" bottom: "f1_conf_perm" top: "f1_conf_flat" flatten_param { axis: 1 } }
layer { name: "f1_priors" type: "PriorBox" bottom: "f1" bottom: "data" top: "f1_priors"
        prior_box_param { min_size: 3 max_size: 6 aspect_ratio: 2 flip: true clip: false
                          variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 } }
layer { name: "f2_loc" type: "Convolution" bottom: "f2" top: "f2_loc" convolution_param { num_output: 16 kernel_size: 3 pad: 1 } }
layer { name: "f2_loc_perm" type: "Permute" bottom: "f2_loc" top: "f2_loc_perm" permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "f2_loc_flat" type: "Flatten" bottom: "f2_loc_perm" top: "f2_loc_flat" flatten_param { axis: 1 } }
layer { name: "f2_conf" type: "Convolution" bottom: "f2" top: "f2_conf" convolution_param { num_output: 12 kernel_size: 3 pad: 1 } }
layer { name: "f2_conf_perm" type: "Permute" bottom: "f2_conf" top: "f2_conf_perm" permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "f2_conf_flat" type: "Flatten" bottom: "f2_conf_perm" top: "f2_conf_flat" flatten_param { axis: 1 } }
layer { name: "f2_priors" type: "PriorBox" bottom: "f2" bottom: "data" top: "f2_priors"
        prior_box_param { min_size: 6 max_size: 10 aspect_ratio: 2 flip: true clip: false
                          variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 } }
layer { name: "loc" type: "Concat" bottom: "f1_loc_flat" bottom: "f2_loc_flat" top: "loc" concat_param { axis: 1 } }
layer { name: "conf" type: "Concat" bottom: "f1_conf_flat" bottom: "f2_conf_flat" top: "conf" concat_param { axis: 1 } }
layer { name: "priors" type: "Concat" bottom: "f1_priors" bottom: "f2_priors" top: "priors" concat_param { axis: 2 } }
layer { name: "conf_reshape" type: "Reshape" bottom: "conf" top: "conf_reshape" reshape_param { shape { dim: 0 dim: -1 dim: 3 } } }
layer { name: "conf_softmax" type: "Softmax" bottom: "conf_reshape" top: "conf_softmax" softmax_param { axis: 2 } }
layer { name: "conf_flat" type: "Flatten" bottom: "conf_softmax" top: "conf_flat" flatten_param { axis: 1 } }
layer { name: "detection_out" type: "DetectionOutput" bottom: "loc" bottom: "conf_flat" bottom: "priors" top: "detection_out"
        detection_output_param { num_classes: 3 share_location: true background_label_id: 0
          nms_param { nms_threshold: 0.45 top_k: 40 } code_type: CENTER_SIZE keep_top_k: 25 confidence_threshold: 0.35 } }
layer { name: "detection_corner" type: "DetectionOutput" bottom: "loc" bottom: "conf_flat" bottom: "priors" top: "detection_corner"
        detection_output_param { num_classes: 3 share_location: true background_label_id: 1
          nms_param { nms_threshold: 0.3 } code_type: CORNER keep_top_k: 30 confidence_threshold: 0.45 } }
layer { name: "detection_encoded" type: "DetectionOutput" bottom: "loc" bottom: "conf_flat" bottom: "priors" top: "detection_encoded"
        detection_output_param { num_classes: 3 share_location: true background_label_id: 0
          nms_param { nms_threshold: 0.5 top_k: 30 } code_type: CENTER_SIZE keep_top_k: 10 confidence_threshold: 0.4 } }
"""
SSD_DETECTION_BLOBS = {"f1": [(4, 3, 3, 3), (4,)], "f2": [(4, 4, 3, 3), (4,)],
                       "f1_loc": [(16, 4, 3, 3), (16,)], "f1_conf": [(12, 4, 3, 3), (12,)],
                       "f2_loc": [(16, 4, 3, 3), (16,)], "f2_conf": [(12, 4, 3, 3), (12,)]}


def ssd_numpy_detection(loc, conf, priors, classes, background, code, nms, top_k, keep_top_k, threshold, encoded,
                        margins, share=True, eta=1.0, clip=False):
    """detection_output_layer.cpp / bbox_util.cpp (weiliu89/caffe `ssd`) in float64: decode
    (per class when not `share`, the background class's locations unread), per-class
    candidates above the threshold best first (top_k), greedy NMS by Jaccard overlap with the
    adaptive threshold of ApplyNMSFast (times eta after each kept box while above 0.5), the
    keep_top_k best per image (keep_top_k None: all), rows by image, label, score; with no
    detection at all one row (image, -1, ..., -1) per image. `clip` is OpenCV's extension:
    decoded boxes clipped to [0, 1]. Also records in `margins` how close each decision came
    to a tie or a threshold."""
    count = priors.shape[2] // 4
    loc_classes = 1 if share else classes
    boxes_p = priors[0, 0].reshape(count, 4).astype(np.float64)
    var = priors[0, 1].reshape(count, 4).astype(np.float64) if not encoded else np.ones((count, 4))
    pw, ph = boxes_p[:, 2] - boxes_p[:, 0], boxes_p[:, 3] - boxes_p[:, 1]

    def decode(p):
        if code == "CORNER_SIZE":
            boxes = boxes_p + var * p * np.stack([pw, ph, pw, ph], 1)
        elif code == "CENTER_SIZE":
            cx = var[:, 0] * p[:, 0] * pw + (boxes_p[:, 0] + boxes_p[:, 2]) / 2
            cy = var[:, 1] * p[:, 1] * ph + (boxes_p[:, 1] + boxes_p[:, 3]) / 2
            w, h = np.exp(var[:, 2] * p[:, 2]) * pw, np.exp(var[:, 3] * p[:, 3]) * ph
            boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
        else:
            boxes = boxes_p + var * p
        return np.clip(boxes, 0, 1) if clip else boxes

    def size(b):
        return 0.0 if b[2] < b[0] or b[3] < b[1] else (b[2] - b[0]) * (b[3] - b[1])

    def overlap(a, b):
        if b[0] > a[2] or b[2] < a[0] or b[1] > a[3] or b[3] < a[1]:
            return 0.0
        inter = (min(a[2], b[2]) - max(a[0], b[0])) * (min(a[3], b[3]) - max(a[1], b[1]))
        return inter / (size(a) + size(b) - inter)
    rows = []
    for n in range(loc.shape[0]):
        p = loc[n].reshape(count, loc_classes, 4).astype(np.float64)
        s = conf[n].reshape(count, classes).astype(np.float64)
        decoded = [decode(p[:, c]) for c in range(loc_classes)]
        kept = []
        for c in range(classes):
            if c == background:
                continue
            boxes = decoded[0 if share else c]
            margins.extend(abs(s[:, c] - threshold))
            cand = [i for i in range(count) if s[i, c] > threshold]
            cand.sort(key=lambda i: -s[i, c])
            ordered = sorted(s[cand, c])
            margins.extend(np.diff(ordered))
            if top_k is not None:
                cand = cand[:top_k]
            keep, adaptive = [], nms
            for i in cand:
                ious = [overlap(boxes[i], boxes[j]) for j in keep]
                margins.extend(abs(np.array(ious) - adaptive))
                if all(o <= adaptive for o in ious):
                    keep.append(i)
                    if eta < 1 and adaptive > 0.5:
                        margins.append(abs(adaptive - 0.5))
                        adaptive *= eta
            kept += [(c, i) for i in keep]
        if keep_top_k is not None and len(kept) > keep_top_k:
            kept.sort(key=lambda d: -s[d[1], d[0]])
            ordered = sorted(s[i, c] for c, i in kept)
            margins.extend(np.diff(ordered))
            kept = kept[:keep_top_k]
            kept.sort(key=lambda d: (d[0], -s[d[1], d[0]]))
        rows += [[n, c, s[i, c], *decoded[0 if share else c][i]] for c, i in kept]
    if not rows:
        rows = [[n, -1, -1, -1, -1, -1, -1] for n in range(loc.shape[0])]
    return np.array(rows, np.float64).reshape(1, 1, -1, 7)


SSD_DETECTION_CONFIGS = {
    "detection_out": dict(classes=3, background=0, code="CENTER_SIZE", nms=0.45, top_k=40, keep_top_k=25,
                          threshold=0.35, encoded=False),
    "detection_corner": dict(classes=3, background=1, code="CORNER", nms=0.3, top_k=None, keep_top_k=30,
                             threshold=0.45, encoded=False),
    "detection_encoded": dict(classes=3, background=0, code="CENTER_SIZE", nms=0.5, top_k=30, keep_top_k=10,
                              threshold=0.4, encoded=False),
}


def detections_in_caffe_order(rows):
    """OpenCV lists an image's detections by descending score when keep_top_k cuts them; Caffe
    lists them by label, then descending score (detection_output_layer.cpp): OpenCV's rows in
    Caffe's order (scores have no ties: the input check)."""
    flat = rows.reshape(-1, 7)
    return flat[np.lexsort((-flat[:, 2], flat[:, 1], flat[:, 0]))].reshape(1, 1, -1, 7)


def ssd_detection_input_check(inputs, blobs, text):
    """Accepts an input when no decision of the three DetectionOutputs comes within 2e-5 of a
    tie (two scores, a score and the threshold, an overlap and nms_threshold), so that float
    rounding in either implementation cannot change the result; and checks that the numpy
    implementation above agrees with OpenCV."""
    with tempfile.TemporaryDirectory() as tmp:
        rp, rm = pathlib.Path(tmp) / "net.prototxt", pathlib.Path(tmp) / "net.caffemodel"
        rp.write_text(text)
        rm.write_bytes(caffemodel_bytes(text, blobs, v1=False))
        names = ["loc", "conf_flat", "priors"] + list(SSD_DETECTION_CONFIGS)
        loc, conf, priors, *detections = opencv_outputs(rp, rm, inputs, [(n, n) for n in names], each=True)
    margins = []
    for (name, config), theirs in zip(SSD_DETECTION_CONFIGS.items(), detections):
        ours = ssd_numpy_detection(loc, conf, priors, margins=margins, **config)
        theirs = detections_in_caffe_order(theirs)
        if ours.size != theirs.size or np.abs(ours.ravel() - theirs.ravel()).max() > 1e-4:
            raise SystemExit(f"ssd_detection: numpy and OpenCV disagree on {name}: {ours.shape} vs {theirs.shape}\n"
                             f"{ours.reshape(-1, 7)[:5]}\n{theirs.reshape(-1, 7)[:5]}")
    return min(margins) > 2e-5


# DetectionOutput's other options on the ssd_detection net, with per-class location
# predictions (48 = 4 priors x 3 classes x 4 per cell) for share_location false.
SSD_OPTIONS_CONFIGS = {
    "keep_all": dict(proto='share_location: true background_label_id: 0 nms_param { nms_threshold: 0.45 top_k: 20 } '
                           'code_type: CENTER_SIZE confidence_threshold: 0.45',
                     classes=3, background=0, code="CENTER_SIZE", nms=0.45, top_k=20, keep_top_k=None, threshold=0.45,
                     encoded=False),
    "background_last": dict(proto='share_location: true background_label_id: 2 nms_param { nms_threshold: 0.4 } '
                                  'code_type: CORNER keep_top_k: 12 confidence_threshold: 0.45',
                            classes=3, background=2, code="CORNER", nms=0.4, top_k=None, keep_top_k=12, threshold=0.45,
                            encoded=False),
    "no_background": dict(proto='share_location: true background_label_id: -1 nms_param { nms_threshold: 0.45 top_k: 15 } '
                                'code_type: CENTER_SIZE keep_top_k: 20 confidence_threshold: 0.5',
                          classes=3, background=-1, code="CENTER_SIZE", nms=0.45, top_k=15, keep_top_k=20, threshold=0.5,
                          encoded=False),
    "encoded_center": dict(proto='share_location: true background_label_id: 0 nms_param { nms_threshold: 0.45 top_k: 30 } '
                                 'code_type: CENTER_SIZE variance_encoded_in_target: true keep_top_k: 15 '
                                 'confidence_threshold: 0.4',
                           classes=3, background=0, code="CENTER_SIZE", nms=0.45, top_k=30, keep_top_k=15, threshold=0.4,
                           encoded=True),
    "corner_size": dict(proto='share_location: true background_label_id: 0 nms_param { nms_threshold: 0.45 top_k: 30 } '
                              'code_type: CORNER_SIZE keep_top_k: 15 confidence_threshold: 0.4',
                        classes=3, background=0, code="CORNER_SIZE", nms=0.45, top_k=30, keep_top_k=15, threshold=0.4,
                        encoded=False),
    "encoded_corner_size": dict(proto='share_location: true background_label_id: 0 nms_param { nms_threshold: 0.45 } '
                                      'code_type: CORNER_SIZE variance_encoded_in_target: true keep_top_k: 15 '
                                      'confidence_threshold: 0.45',
                                classes=3, background=0, code="CORNER_SIZE", nms=0.45, top_k=None, keep_top_k=15,
                                threshold=0.45, encoded=True),
    "per_class_loc": dict(proto='share_location: false background_label_id: 0 nms_param { nms_threshold: 0.45 top_k: 30 } '
                                'code_type: CENTER_SIZE keep_top_k: 15 confidence_threshold: 0.4',
                          loc="loc_classes", classes=3, background=0, code="CENTER_SIZE", nms=0.45, top_k=30, keep_top_k=15,
                          threshold=0.4, encoded=False, share=False),
    "eta": dict(proto='share_location: true background_label_id: 0 nms_param { nms_threshold: 0.8 top_k: 40 eta: 0.7 } '
                      'code_type: CENTER_SIZE keep_top_k: 30 confidence_threshold: 0.4',
                classes=3, background=0, code="CENTER_SIZE", nms=0.8, top_k=40, keep_top_k=30, threshold=0.4, encoded=False,
                eta=0.7),
    "clip": dict(proto='share_location: true background_label_id: 0 nms_param { nms_threshold: 0.3 top_k: 30 } '
                       'code_type: CENTER_SIZE keep_top_k: 15 confidence_threshold: 0.4 clip: true',
                 classes=3, background=0, code="CENTER_SIZE", nms=0.3, top_k=30, keep_top_k=15, threshold=0.4, encoded=False,
                 clip=True),
    "empty": dict(proto='share_location: true background_label_id: 0 nms_param { nms_threshold: 0.45 top_k: 30 } '
                        'code_type: CENTER_SIZE keep_top_k: 15 confidence_threshold: 0.995',
                  classes=3, background=0, code="CENTER_SIZE", nms=0.45, top_k=30, keep_top_k=15, threshold=0.995,
                  encoded=False),
}


def ssd_options_net(names, opencv=False):
    """The net with the DetectionOutput layers `names`; for OpenCV, which wants priors without
    variances when they are encoded in the target, those layers read the boxes' half of the
    priors (a Slice), as Caffe ignores the variances there."""
    body = SSD_DETECTION[:SSD_DETECTION.index('layer { name: "detection_out"')].replace('name: "ssd_detection"',
                                                                                      'name: "ssd_detection_options"')
    lines = [body.rstrip()]
    for f in ("f1", "f2"):
        lines.append(f'layer {{ name: "{f}_loc_c" type: "Convolution" bottom: "{f}" top: "{f}_loc_c" '
                     'convolution_param { num_output: 48 kernel_size: 3 pad: 1 } }')
        lines.append(f'layer {{ name: "{f}_loc_c_perm" type: "Permute" bottom: "{f}_loc_c" top: "{f}_loc_c_perm" '
                     'permute_param { order: 0 order: 2 order: 3 order: 1 } }')
        lines.append(f'layer {{ name: "{f}_loc_c_flat" type: "Flatten" bottom: "{f}_loc_c_perm" top: "{f}_loc_c_flat" '
                     'flatten_param { axis: 1 } }')
    lines.append('layer { name: "loc_classes" type: "Concat" bottom: "f1_loc_c_flat" bottom: "f2_loc_c_flat" '
                 'top: "loc_classes" concat_param { axis: 1 } }')
    if opencv:
        lines.append('layer { name: "priors_boxes" type: "Slice" bottom: "priors" top: "priors_boxes" '
                     'top: "priors_variances" slice_param { axis: 1 slice_point: 1 } }')
    for name in names:
        config = SSD_OPTIONS_CONFIGS[name]
        priors = "priors_boxes" if opencv and config["encoded"] else "priors"
        lines.append(f'layer {{ name: "{name}" type: "DetectionOutput" bottom: "{config.get("loc", "loc")}" '
                     f'bottom: "conf_flat" bottom: "{priors}" top: "{name}"\n'
                     f'        detection_output_param {{ num_classes: 3 {config["proto"]} }} }}')
    return "\n".join(lines) + "\n"


SSD_OPTIONS = ssd_options_net(SSD_OPTIONS_CONFIGS)
SSD_OPTIONS_BLOBS = dict(SSD_DETECTION_BLOBS, f1_loc_c=[(48, 4, 3, 3), (48,)], f2_loc_c=[(48, 4, 3, 3), (48,)])
# OpenCV 4.12 refuses keep_top_k -1 (it requires the field) and background_label_id -1
# ("Could not find location predictions for label -1"), and cannot parse CORNER_SIZE (its
# caffe.proto lacks it); its empty result is its own (keep_top_k rows per image, scores 0),
# not Caffe's one row of -1 per image. These have the numpy implementation as reference.
# OpenCV runs `eta` but ignores nms_param.eta: the check below shows its output is the numpy
# one with eta 1 and differs from eta 0.7; the reference is numpy's with eta 0.7.
SSD_OPTIONS_NOT_IN_OPENCV = {"keep_all", "no_background", "corner_size", "encoded_corner_size", "empty"}
SSD_OPTIONS_NUMPY_ONLY = SSD_OPTIONS_NOT_IN_OPENCV | {"eta"}
SSD_OPTIONS_OPENCV = ssd_options_net([n for n in SSD_OPTIONS_CONFIGS if n not in SSD_OPTIONS_NOT_IN_OPENCV], opencv=True)


def numpy_config(config):
    return {k: v for k, v in config.items() if k not in ("proto", "loc")}


def ssd_options_opencv(inputs, blobs, text):
    """OpenCV's outputs of the net's blobs and of every DetectionOutput it can run, in Caffe's row order."""
    with tempfile.TemporaryDirectory() as tmp:
        rp, rm = pathlib.Path(tmp) / "net.prototxt", pathlib.Path(tmp) / "net.caffemodel"
        rp.write_text(text)
        rm.write_bytes(caffemodel_bytes(text, blobs, v1=False))
        names = ["loc", "loc_classes", "conf_flat", "priors"] + [n for n in SSD_OPTIONS_CONFIGS
                                                                  if n not in SSD_OPTIONS_NOT_IN_OPENCV]
        results = opencv_outputs(rp, rm, inputs, [(n, n) for n in names], each=True)
    tensors = dict(zip(names, results))
    return tensors, {n: detections_in_caffe_order(tensors[n]) for n in names[4:]}


def ssd_options_numpy(tensors, margins):
    return {name: ssd_numpy_detection(tensors[config.get("loc", "loc")], tensors["conf_flat"], tensors["priors"],
                                      margins=margins, **numpy_config(config))
            for name, config in SSD_OPTIONS_CONFIGS.items()}


def ssd_options_input_check(inputs, blobs, text):
    """As ssd_detection_input_check, for every configuration: numpy must agree with OpenCV on
    those OpenCV runs, and no decision may come within 2e-5 of a tie or threshold."""
    tensors, theirs = ssd_options_opencv(inputs, blobs, SSD_OPTIONS_OPENCV)
    margins = []
    ours = ssd_options_numpy(tensors, margins)
    margins_eta_1 = []
    ours["eta"], eta_07 = ssd_numpy_detection(tensors["loc"], tensors["conf_flat"], tensors["priors"], margins=margins_eta_1,
                                              **dict(numpy_config(SSD_OPTIONS_CONFIGS["eta"]), eta=1.0)), ours["eta"]
    if eta_07.size == ours["eta"].size and np.abs(eta_07.ravel() - ours["eta"].ravel()).max() < 1e-3:
        return False  # eta must change the result for the fixture to show it
    margins += margins_eta_1
    for name, t in theirs.items():
        o = ours[name]
        if o.size != t.size or np.abs(o.ravel() - t.ravel()).max() > 1e-4:
            raise SystemExit(f"ssd_detection_options: numpy and OpenCV disagree on {name}: {o.shape} vs {t.shape}\n"
                             f"{o.reshape(-1, 7)[:5]}\n{t.reshape(-1, 7)[:5]}")
    return min(margins) > 2e-5


def ssd_options_reference(inputs, blobs):
    """OpenCV's detections (in Caffe's row order) where OpenCV computes the configuration, the
    numpy implementation of Caffe's layer (checked against OpenCV on the others) elsewhere."""
    tensors, theirs = ssd_options_opencv(inputs, blobs, SSD_OPTIONS_OPENCV)
    ours = ssd_options_numpy(tensors, [])
    return {name: ours[name] if name in SSD_OPTIONS_NUMPY_ONLY else theirs[name] for name in SSD_OPTIONS_CONFIGS}


NETS = {
    "lenet": dict(text=LENET_V2, blobs=LENET_BLOBS, inputs={"data": (1, 12, 12)},
                  description="LeNet-like V2 net with an Input layer: Convolution, MAX Pooling, InnerProduct on a 4-D blob, in-place ReLU, Softmax."),
    "lenet_v1": dict(text=LENET_V1, blobs=LENET_BLOBS, inputs={"data": (1, 12, 12)}, v1_model=True,
                     same_as="lenet",
                     description="The lenet net in V1 form (`layers`, enum types, blobs_lr, input + input_dim) with a V1 caffemodel holding legacy 4-D blob dims (InnerProduct weight 1x1xNxK, biases 1x1x1xN)."),
    "lenet_mixed": dict(text=LENET_MIXED, blobs=LENET_BLOBS, inputs={"data": (1, 12, 12)}, v1_model=True,
                        same_as="lenet", reference_text=LENET_V2,
                        description="The lenet net with V1 `layers` and V2 `layer` entries in one prototxt (input + input_shape) and a V1 caffemodel. Caffe and OpenCV refuse the mix: the reference is OpenCV on the V2 form with the same weights."),
    "conv_forms": dict(text=CONV_FORMS, blobs=CONV_FORMS_BLOBS, inputs={"data": (4, 11, 13)},
                       description="Convolution forms: group, dilation with stride, kernel_h/kernel_w/pad_h/pad_w/stride_h/stride_w without bias, per-axis repeated kernel_size/stride/pad."),
    "pooling": dict(text=POOLING, blobs={}, inputs={"data": (3, 7, 8)},
                    description="Pooling with Caffe's ceil rounding and last-window clipping (MAX and AVE, 3x3/2 pad 1 on 7x8, 2x2/2 pad 1 where a window would start in the padding), AVE counting pad cells, rectangular kernels and strides, global MAX/AVE."),
    "pooling_relu": dict(text=POOLING_RELU, blobs={}, inputs={"data": (3, 7, 8)},
                         description="Caffe's ceil-rounded MAX pooling with pads after a ReLU (3x3/2 pad 1 and 2x2/2 pad 1 on 7x8: windows reading pad cells, inputs >= 0) and AVE 2x2/2 pad 1 (whole windows, pad cells counted): Keras writes them as ZeroPadding2D + valid pooling."),
    "crop_all_axes": dict(text=CROP_ALL_AXES, blobs={}, inputs={"data": (5, 7, 8), "size": (2, 4, 3)},
                          description="Crop of channels, height and width (axis 1, offsets 1, 2, 3) and of height and width (axis 2, offset 1) to a second input's size."),
    "pooling_floor": dict(text=POOLING_FLOOR, blobs={}, inputs={"data": (2, 7, 8)},
                          reference_edit=lambda t: t.replace("round_mode: FLOOR", "ceil_mode: false"),
                          description="Pooling with round_mode: FLOOR. OpenCV's caffe.proto reuses field 13 as a bool ceil_mode: the reference prototxt says ceil_mode: false."),
    "resnet_bottleneck": dict(text=RESNET_BOTTLENECK, blobs=RESNET_BLOBS, inputs={"data": (8, 6, 6)},
                              description="ResNet bottleneck: in-place BatchNorm (scale factor 0.5, eps default and 0.001) + Scale (with and without bias) + ReLU, Eltwise SUM shortcut, global AVE pooling, InnerProduct."),
    "batchnorm_zero_factor": dict(text=BATCHNORM_ZERO, blobs=BATCHNORM_ZERO_BLOBS, inputs={"data": (3, 4, 4)},
                                  bn_factor={"bn": 0.0, "bn_fc": 2.0},
                                  description="BatchNorm whose stored scale factor is 0 (statistics count as zero) on a 4-D blob, and factor 2 with eps 0.01 on a 2-D blob after an InnerProduct."),
    "mobilenet_block": dict(text=MOBILENET_BLOCK, blobs=MOBILENET_BLOBS, inputs={"data": (3, 10, 10)},
                            reference_edit=mobilenet_reference,
                            description="MobileNet block: strided conv + BN + Scale + ReLU, the forks' ConvolutionDepthwise and DepthwiseConvolution types, pointwise conv, leaky ReLU, global pooling, 1x1 conv classifier, Flatten, Softmax. Reference: OpenCV with the depthwise layers as Convolution group 8."),
    "eltwise": dict(text=ELTWISE, blobs={}, inputs={"a": (3, 4, 5), "b": (3, 4, 5)},
                    description="Eltwise over three bottoms: SUM with coeff (0.5, -2, 1), PROD, MAX, plain SUM; two net inputs; TanH, Sigmoid."),
    "scale_forms": dict(text=SCALE_FORMS, blobs=SCALE_FORMS_BLOBS, inputs={"data": (3, 4, 5), "factor": (3,)},
                        reference_edit=scale_forms_reference, reference_blobs=scale_forms_reference_blobs,
                        description="Scale per channel with bias, axis 2 num_axes 1, num_axes -1 with bias, the two-bottom form (axis 0, factor (N, 3)), and a Bias layer. OpenCV has no Bias layer: the reference computes it as a Scale with unit factors and the same bias blob."),
    "shapes": dict(text=SHAPES, blobs=SHAPES_BLOBS, inputs={"data": (4, 3, 6)},
                   reference_edit=shapes_reference, reference_blobs=shapes_reference_blobs,
                   description="Flatten axis 1 end_axis 2, Softmax axis -1 and default 1, Reshape with 0 and -1 and with axis/num_axes, InnerProduct on axis 2 and with transpose: true, Permute. OpenCV ignores `transpose`: the reference stores the same weights untransposed."),
    "inplace_split": dict(text=INPLACE_SPLIT, blobs=INPLACE_BLOBS, inputs={"data": (2, 5, 5)},
                          description="In-place chains (ReLU, Dropout, TanH and leaky ReLU writing their bottom), an explicit Split with two tops, input + input_dim, two branches joined by Eltwise, InnerProduct."),
    "train_val": dict(text=TRAIN_VAL, blobs=TRAIN_VAL_BLOBS, inputs={"data": (1, 10, 10)},
                      reference_text=train_val_reference(TRAIN_VAL), warns=["mnist_test", "accuracy", "loss"],
                      description="A train_val net: TRAIN and TEST Data layers (include rules), a TRAIN-only Dropout (exclude rule), Accuracy and SoftmaxWithLoss. Ferry drops the data, loss and accuracy layers with a warning and takes the TEST data layer's top as the input (channels from conv1, size from crop_size). Reference: OpenCV on the deploy form."),
    "activations": dict(text=ACTIVATIONS, blobs=ACTIVATIONS_BLOBS, inputs={"data": (3, 4, 5)},
                        reference_edit=activations_reference, reference_blobs=activations_reference_blobs,
                        description="PReLU per channel and channel_shared (a 0-d blob, as Caffe writes it), AbsVal, Swish (beta 1.5 and 1), ReLU6, Power with power 2 / 1 / 0, scale and shift. OpenCV cannot read a 0-d blob: its copy of the weights stores the shared slope as shape (1,); OpenCV's Swish ignores beta: the reference spells it Power + Sigmoid + Eltwise PROD."),
    "ssd_head": dict(text=SSD_HEAD, blobs=SSD_HEAD_BLOBS, inputs={"data": (3, 20, 20)}, reference_edit=ssd_head_reference,
                     description="An SSD head: conv, location conv, Permute (0, 2, 3, 1) and Flatten, PriorBox with min/max size, flipped aspect ratio, clip and four variances, and PriorBox with two ratios, no flip, no clip (SSD's default), an explicit step and offset, one variance. OpenCV's PriorBox clips by default: the reference states clip: false."),
    "clip": dict(text=CLIP, blobs={}, inputs={"data": (3, 4, 5)}, numpy_reference=clip_reference,
                 description="Clip (clip_param min/max). OpenCV has no Clip layer: the reference is numpy's clip."),
    "reduction": dict(text=REDUCTION, blobs={}, inputs={"data": (3, 4, 5)}, numpy_reference=reduction_reference,
                      description="Reduction SUM (axis 1), ASUM (axis 2, coeff 0.5), SUMSQ (axis -1), MEAN (axis 1, coeff 3): every axis from `axis` on reduced. OpenCV has no Reduction layer: the reference is numpy (float64) following Caffe's definition."),
    "math": dict(text=MATH, blobs={}, inputs={"data": (3, 4, 5)}, reference_edit=math_reference,
                 description="ELU (alpha 0.7), BNLL, Exp (base e and 2, scale, shift), Log (base e and 10, scale, shift), Power with powers 1.5 and -0.5. OpenCV's Log ignores base, scale and shift: the reference spells log10(2x + 0.5) as Power, Log, Power."),
    "mvn": dict(text=MVN, blobs={}, inputs={"data": (3, 4, 5)}, numpy_reference=mvn_reference,
                description="MVN per channel with variance, without variance, and across channels with eps 0.01. OpenCV adds eps under the square root (Caffe adds it to the deviation), which shows with eps 0.01: the reference is numpy following Caffe's mvn_layer."),
    "lrn": dict(text=LRN, blobs={}, inputs={"data": (7, 5, 6)}, reference_edit=lrn_reference,
                description="LRN ACROSS_CHANNELS with Caffe's defaults (no lrn_param), with k = 2, AlexNet's parameters, and WITHIN_CHANNEL. OpenCV ignores k and the defaults: the reference writes the defaults out and computes k = 2 as LRN with alpha / k followed by Power scale k^-beta."),
    "inception": dict(text=INCEPTION, blobs=INCEPTION_BLOBS, inputs={"data": (4, 9, 9)}, reference_edit=inception_reference,
                      description="Inception-like branches joined by Concat (default axis), in-place ReLU on the concat, Slice at slice_points on channels and width, Slice into equal parts with the legacy slice_dim, Concat with the legacy concat_dim and with axis -1, Flatten and Concat of vectors. OpenCV ignores concat_dim and slice_dim: the reference writes the same axes as `axis`."),
    "fcn": dict(text=FCN, blobs=FCN_BLOBS, inputs={"data": (3, 16, 16)},
                reference_edit=fcn_reference, reference_blobs=fcn_reference_blobs,
                description="FCN-like: conv with pad 5, pooling, score, Deconvolution (stride 2, no bias) and a grouped, dilated, padded Deconvolution, Crop to the input from axis 2 at offset 5, Crop from axis 1 with one offset per axis. OpenCV ignores a Deconvolution's dilation: the reference gives it the dilated kernel written out (3x3 spread to 5x5 with zeros)."),
    "tile": dict(text=TILE, blobs={}, inputs={"data": (2, 3, 4)}, numpy_reference=tile_reference,
                 description="Tile along the channels (default axis 1) and along axis -1. OpenCV cannot run Caffe's Tile: the reference is numpy's tile."),
    "threshold": dict(text=THRESHOLD, blobs={}, inputs={"data": (3, 4, 5)}, numpy_reference=threshold_reference,
                      description="Threshold at the default 0 and at 0.5. OpenCV has no Threshold layer: the reference is numpy following threshold_layer.cpp."),
    "argmax": dict(text=ARGMAX, blobs={}, inputs={"data": (5, 3, 4)}, numpy_reference=argmax_reference,
                   description="ArgMax along axis 1 (index and out_max_val), along axis -1, and without an axis (flattened per sample; index, and the (index, value) pair of out_max_val). OpenCV has no ArgMax layer: the reference is numpy following argmax_layer.cpp."),
    "argmax_topk": dict(text=ARGMAX_TOPK, blobs={}, inputs={"data": (5, 3, 4)}, numpy_reference=argmax_topk_reference,
                        input_maker=tied_input,
                        description="ArgMax with top_k: 3 along the channels (indices, and values with out_max_val), 2 "
                                    "along axis -1, 4 over the flattened sample (indices, and the indices-then-values "
                                    "pair of out_max_val). The input holds small integers with many ties: Caffe lists "
                                    "equal values from the larger index. OpenCV has no ArgMax layer: the reference is "
                                    "numpy following argmax_layer.cpp."),
    "embed": dict(text=EMBED, blobs=EMBED_BLOBS, inputs={"words": (6,)}, numpy_reference=embed_reference,
                  input_maker=embed_input,
                  description="Embed with and without bias on float indices with fractions (truncated). OpenCV has no Embed layer: the reference is numpy following embed_layer.cpp."),
    "normalize": dict(text=NORMALIZE, blobs=NORMALIZE_BLOBS, inputs={"data": (4, 5, 6)},
                      description="SSD's Normalize: across_spatial with a shared scale (the defaults), per position with a scale per channel, per position with a shared scale and eps 0.5."),
    "shuffle_channel": dict(text=SHUFFLE_CHANNEL, blobs={}, inputs={"data": (6, 3, 4)},
                            description="ShuffleChannel with group 2, then group 3."),
    "interp": dict(text=INTERP, blobs={}, inputs={"data": (3, 7, 9)},
                   description="DeepLab's Interp (bilinear, corners aligned) by zoom_factor 3 and to height 5 width 12."),
    "interp_crop": dict(text=INTERP_CROP, blobs={}, inputs={"data": (3, 9, 10)}, numpy_reference=interp_crop_reference,
                        description="Interp by shrink_factor 2, shrink_factor 3 with zoom_factor 2, and zoom 2 after pad_beg -1 / pad_end -2. OpenCV ignores shrink_factor and the pads: the reference is numpy following DeepLab's interp_layer.cpp and caffe_cpu_interp2."),
    "interp_deeplab": dict(text=INTERP_DEEPLAB, blobs={}, inputs={"data": (3, 9, 10), "guide": (1, 11, 7)},
                           numpy_reference=interp_deeplab_reference, input_check=interp_deeplab_input_check,
                           deeplab_binary=True,
                           description="DeepLab's Interp sized by a second bottom (a pooled blob brought back to the "
                                       "input's size, and the input cropped by pad_beg/pad_end -1 to a second net "
                                       "input's size), by height 6 width 13, and by zoom_factor 2 after crops. The "
                                       "caffemodel holds interp_param at field 143 as DeepLab's Caffe writes it (BVLC: "
                                       "input_param); it must also load alone. OpenCV refuses a second bottom and "
                                       "ignores the pads: the reference is numpy following DeepLab's interp_layer.cpp "
                                       "(checked against OpenCV's Interp for height/width)."),
    "upsample": dict(text=UPSAMPLE, blobs={}, inputs={"data": (2, 3, 4)}, numpy_reference=upsample_reference,
                     description="The YOLOv3 forks' nearest Upsample by scale 2 and by scale_h 3, scale_w 1. OpenCV has no Upsample layer: the reference is numpy."),
    "upsample_unpool": dict(text=UPSAMPLE_UNPOOL, blobs={}, inputs={"data": (2, 8, 10), "odd": (2, 7, 9)},
                            numpy_reference=upsample_unpool_reference, input_check=upsample_unpool_input_check,
                            onnx_error="pool1 (Pooling)",
                            description="The SegNet / ENet forks' max unpooling: MAX Pooling with a second (mask) top "
                                        "read by Upsample with two bottoms, by scale 2 (2x2/2 pooling, TanH of the "
                                        "pooled values put back), by upsample_h/upsample_w after overlapping 3x3/2 "
                                        "pad 1 windows (max plus the AVE pooling put back: a later window writing the "
                                        "same cell wins), and with pad_out "
                                        "on an odd-sized input (ceil windows clipped). OpenCV's Caffe importer gives "
                                        "Pooling no mask output and has no Upsample: the reference is numpy following "
                                        "pooling_layer.cpp and the forks' upsample_layer.cpp, checked against "
                                        "onnxruntime's MaxPool indices and MaxUnpool. ONNX export refuses the "
                                        "per-plane mask naming the layer."),
    "bn_fork": dict(text=BN_FORK, blobs=BN_FORK_BLOBS, inputs={"data": (3, 5, 6)}, numpy_reference=bn_fork_reference,
                    description="The SegNet / ENet forks' BN layer (scale and shift blobs of shape (1, C, 1, 1)) with "
                                "bn_mode INFERENCE (scale * x + shift, the forks' deploy form), in place after a "
                                "convolution, and LEARN (the default: normalized by the running batch's statistics, "
                                "var_eps 1e-9). OpenCV cannot read BN: the reference is numpy following bn_layer.cpp."),
    "pooling_sparse": dict(text=POOLING_SPARSE, blobs={}, inputs={"data": (2, 6, 7)}, numpy_reference=pooling_sparse_reference,
                           description="Pooling with kernels smaller than the stride and no padding, where Caffe's ceil rounding keeps windows starting past the input: MAX 1x1/4 (empty windows give -FLT_MAX, seen through TanH as -1), AVE 2x1 with strides 4, 3 (empty windows give 0), MAX 2x2/3. OpenCV gives 0 for the empty MAX windows: the reference is numpy following pooling_layer.cpp."),
    "ssd_detection": dict(text=SSD_DETECTION, blobs=SSD_DETECTION_BLOBS, inputs={"data": (3, 12, 12)},
                          input_check=ssd_detection_input_check, onnx_error="DetectionOutput",
                          forward_each=True, reorder_outputs=detections_in_caffe_order,
                          description="An SSD-shaped net: two feature maps with location and confidence convolutions, Permute + Flatten, PriorBox with variances, Concat, softmax over 3 classes, and DetectionOutput three ways: CENTER_SIZE with nms_param top_k 40, keep_top_k 25 and confidence_threshold 0.35; CORNER with class 1 as background, no top_k, nms 0.3; CENTER_SIZE with nms 0.5, top_k 30, keep_top_k 10. The input is drawn again until no decision comes within 2e-5 of a tie or threshold (checked by a numpy implementation of Caffe's detection_output_layer.cpp that must also agree with OpenCV). OpenCV lists detections cut by keep_top_k by score (Caffe by label, then score): the reference rows are OpenCV's put in Caffe's order. OpenCV requires keep_top_k and share_location, and crashes with keep_top_k -1 or with the last class as background, so every layer states them. ONNX export refuses DetectionOutput naming the layer."),
    "ssd_detection_options": dict(
        text=SSD_OPTIONS, blobs=SSD_OPTIONS_BLOBS, inputs={"data": (3, 12, 12)}, input_check=ssd_options_input_check,
        numpy_reference=ssd_options_reference, onnx_error="DetectionOutput",
        reference_note=f"OpenCV {cv2.__version__} cv2.dnn.readNetFromCaffe (rows put in Caffe's order) for "
                       + ", ".join(n for n in SSD_OPTIONS_CONFIGS if n not in SSD_OPTIONS_NUMPY_ONLY)
                       + " (the encoded one reading a Slice of the priors without variances, as OpenCV wants); the numpy "
                       "implementation of detection_output_layer.cpp in tools/make_caffe_fixtures.py, which agrees with "
                       "OpenCV on those, for " + ", ".join(n for n in SSD_OPTIONS_CONFIGS if n in SSD_OPTIONS_NUMPY_ONLY),
        description="The ssd_detection net with DetectionOutput's other options: keep_top_k -1 (left out), the last class "
                    "(2) as background, no background (-1), variance_encoded_in_target with CENTER_SIZE and with "
                    "CORNER_SIZE, CORNER_SIZE with the priors' variances, share_location false (per-class locations from "
                    "their own convolutions), nms eta 0.7 with nms_threshold 0.8 (the adaptive threshold), OpenCV's clip, "
                    "and a confidence_threshold nothing passes (Caffe's one row (image, -1, ..., -1) per image). OpenCV "
                    "refuses keep_top_k -1 and background -1, cannot parse CORNER_SIZE, ignores eta and has its own "
                    "empty result: those are checked against the numpy implementation of Caffe's layer, itself checked "
                    "against OpenCV on the rest. The input is drawn again until no decision comes within 2e-5 of a tie."),
    "error_unknown_layer": dict(text=ERROR_UNKNOWN, blobs={"conv": [(2, 2, 1, 1), (2,)]}, inputs={"data": (2, 4, 4)},
                                error_layer="mystery", error_text="FancyNewThing",
                                description="An unknown layer type: exit 2 naming the layer and its type."),
    "error_python_layer": dict(text=ERROR_PYTHON, blobs={}, inputs={"data": (2, 4, 4)},
                               error_layer="proposal", error_text="Python",
                               description="A Python layer (user code): exit 2 naming the layer and its type."),
    "error_upsample_not_mask": dict(text=ERROR_UPSAMPLE_NOT_MASK, blobs={}, inputs={"data": (2, 4, 4)},
                                    error_layer="up (Upsample)", error_text="mask top",
                                    description="A two-bottom Upsample whose second bottom is a pooled blob, not a "
                                                "Pooling mask top: exit 2 naming the layer."),
    "error_missing_blob": dict(text=ERROR_MISSING_BLOB, blobs={"conv": [(2, 2, 1, 1), (2,)]}, inputs={"data": (2, 4, 4)},
                               error_layer="fc_missing", error_text="missing",
                               description="An InnerProduct whose weights the caffemodel does not hold."),
    "error_blob_shape": dict(text=ERROR_BAD_SHAPE, blobs={"conv_bad": [(2, 2, 1, 1), (2,)]}, inputs={"data": (2, 4, 4)},
                             error_layer="conv_bad", error_text="shape",
                             description="A Convolution whose weight blob has the wrong shape (1x1 for kernel_size 3)."),
    "error_no_bottom": dict(text=ERROR_NO_BOTTOM, blobs={}, inputs={"data": (2, 4, 4)},
                            error_layer="relu_orphan", error_text="nothing_makes_this",
                            description="A bottom no layer produces."),
    "error_syntax": dict(text=ERROR_SYNTAX, blobs={}, inputs={"data": (2, 4, 4)}, syntax_error=True,
                         error_layer="line 5", error_text="broken",
                         description="A prototxt that does not parse (an unclosed brace): exit 2 with the line and column."),
}


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

def random_blobs(name, spec):
    """Seeded weights per layer: N(0, 1/sqrt(fan_in)) weights, nonzero biases; BatchNorm gets
    mean, variance and a scale factor, the statistics stored multiplied by it."""
    out = {}
    factors = spec.get("bn_factor", {})
    bn_layers = set(re.findall(r'name: "([^"]+)" type: "BatchNorm"', spec["text"]))
    for layer, shapes in spec["blobs"].items():
        rng = rng_for(spec.get("same_as", name), layer)
        if layer in bn_layers:
            (c,) = shapes[0]
            factor = factors.get(layer, 0.5)
            mean = rng.normal(0, 1, c).astype(np.float32)
            var = rng.uniform(0.5, 2.0, c).astype(np.float32)
            out[layer] = [mean * factor, var * factor, np.array([factor], np.float32)]
            continue
        blobs = []
        for i, shape in enumerate(shapes):
            if i == 0 and len(shape) > 1:
                fan_in = int(np.prod(shape[1:]))
                blobs.append(rng.normal(0, 1 / np.sqrt(fan_in), shape).astype(np.float32))
            else:
                blobs.append(rng.normal(0.1, 0.5, shape).astype(np.float32))
        out[layer] = blobs
    return out


def set_blob(blob_msg, array, legacy):
    array = np.asarray(array, np.float32)
    if legacy:
        dims = [1] * (4 - array.ndim) + list(array.shape)
        blob_msg.num, blob_msg.channels, blob_msg.height, blob_msg.width = dims
    else:
        blob_msg.shape.SetInParent()  # present even for a 0-d blob (PReLU channel_shared)
        blob_msg.shape.dim.extend(array.shape)
    blob_msg.data.extend(array.ravel().tolist())


def varint(n):
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def length_delimited(field, payload):
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def caffemodel_bytes(text, blobs, v1, deeplab_binary=False):
    """The net with its blobs, serialized: V1 layers with legacy dims when `v1`; with
    `deeplab_binary`, each V2 layer's interp_param at field 143, as DeepLab's caffe.proto
    numbers it, instead of schemas/caffe.proto's 2143."""
    net = pb.NetParameter()
    text_format.Parse(text, net)
    for layer in list(net.layer) + list(net.layers):
        for array in blobs.get(layer.name, []):
            set_blob(layer.blobs.add(), array, legacy=v1)
    if not deeplab_binary:
        return net.SerializeToString()
    layers = list(net.layer)
    net.ClearField("layer")
    out = net.SerializeToString()
    for layer in layers:
        interp = layer.interp_param.SerializeToString() if layer.HasField("interp_param") else None
        layer.ClearField("interp_param")
        payload = layer.SerializeToString() + (length_delimited(143, interp) if interp is not None else b"")
        out += length_delimited(100, payload)  # NetParameter.layer
    return out


def output_tops(text):
    """Blobs no kept layer reads, in the order of their last writer, with that writer's name
    (OpenCV's forward() takes layer names). Layers that would be dropped are left out."""
    net = pb.NetParameter()
    text_format.Parse(text, net)
    consumed, order, writer = {}, [], {}
    for layer in list(net.layers) + list(net.layer):
        for b in layer.bottom:
            consumed[b] = True
        for t in layer.top:
            consumed[t] = False
            if t in order:
                order.remove(t)
            order.append(t)
            writer[t] = layer.name
    return [(t, writer[t]) for t in order if not consumed[t]]


# OpenCV 4.12 crashes destroying a net that ran DetectionOutput: the nets are kept to the end.
OPENCV_NETS = []


def opencv_outputs(prototxt, caffemodel, inputs, outputs, each=False):
    if each:
        # OpenCV 4.12 crashes forwarding several DetectionOutput layers at once: one net per output.
        return [opencv_outputs(prototxt, caffemodel, inputs, [o])[0] for o in outputs]
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
    OPENCV_NETS.append(net)
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    net.enableFusion(False)
    for name, array in inputs.items():
        net.setInput(array, name)
    results = net.forward([layer for _, layer in outputs])
    return [np.asarray(r, np.float32) for r in results]


def make(name, spec):
    d = OUT / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    text = spec["text"].lstrip()
    (d / "net.prototxt").write_text(text)
    expect = "error" if "error_layer" in spec else "ok"
    blobs = random_blobs(name, spec)
    manifest = {"name": name, "description": spec["description"], "expect": expect}
    rng = rng_for(spec.get("same_as", name), "input")
    make_input = spec.get("input_maker", lambda rng, shape: rng.normal(0, 1, shape))
    for attempt in range(100):
        inputs = {k: np.asarray(make_input(rng, (BATCH, *shape)), np.float32) for k, shape in spec["inputs"].items()}
        # Some nets need inputs whose results stay clear of ties: draw again until they do.
        if "input_check" not in spec or spec["input_check"](inputs, blobs, text):
            break
    else:
        raise SystemExit(f"{name}: no input passed the input check in 100 draws")
    manifest["inputs"] = []
    for i, (k, a) in enumerate(inputs.items()):
        np.save(d / f"input_{i}.npy", a)
        manifest["inputs"].append({"name": k, "npy": f"input_{i}.npy"})
    if spec.get("syntax_error"):
        manifest.update(error_layer=spec["error_layer"], error_text=spec["error_text"], outputs=[])
        (d / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        return
    (d / "net.caffemodel").write_bytes(caffemodel_bytes(text, blobs, spec.get("v1_model", False),
                                                        spec.get("deeplab_binary", False)))
    if expect == "error":
        manifest.update(error_layer=spec["error_layer"], error_text=spec["error_text"], outputs=[])
        (d / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        return

    if "numpy_reference" in spec:
        results_by_top = spec["numpy_reference"](inputs, blobs)
        outputs = output_tops(text)
        results = [np.asarray(results_by_top[t], np.float32) for t, _ in outputs]
        manifest["reference"] = "numpy implementation of Caffe's definition in tools/make_caffe_fixtures.py " + \
            f"({spec['numpy_reference'].__name__})"
        manifest["reference"] = spec.get("reference_note", manifest["reference"])
        write_outputs(d, manifest, outputs, results, spec)
        return

    ref_text = spec.get("reference_text") or (spec["reference_edit"](text) if "reference_edit" in spec else text)
    ref_blobs = spec["reference_blobs"](blobs) if "reference_blobs" in spec else blobs
    differs = ref_text != text or "reference_blobs" in spec or spec.get("v1_model")
    # A reference in OpenCV's own dialect (ceil_mode) does not parse with caffe.proto; its
    # structure and layer names are the original's then, and the weights come with those.
    model_text = spec.get("reference_text", text if "ceil_mode" in ref_text else ref_text)
    # The reference may leave extra blobs unread (ssd_detection): the original net's outputs.
    outputs = output_tops(text if spec.get("outputs_of_original") else model_text)
    with tempfile.TemporaryDirectory() as tmp:
        rp, rm = pathlib.Path(tmp) / "ref.prototxt", pathlib.Path(tmp) / "ref.caffemodel"
        rp.write_text(ref_text)
        rm.write_bytes(caffemodel_bytes(model_text, ref_blobs, v1=False))
        results = opencv_outputs(rp, rm, inputs, outputs, each=spec.get("forward_each", False))
        if "reorder_outputs" in spec:
            results = [spec["reorder_outputs"](r) for r in results]
    if ref_text != text:
        (d / "reference.prototxt").write_text(ref_text.lstrip())
    manifest["reference"] = ("rows reordered as Caffe lists them; " if "reorder_outputs" in spec else "") + \
        f"OpenCV {cv2.__version__} cv2.dnn.readNetFromCaffe on " + (
        "reference.prototxt with the same weights" + (" (rewritten as described)" if "reference_blobs" in spec else "")
        if differs else "net.prototxt + net.caffemodel")
    write_outputs(d, manifest, outputs, results, spec)


def write_outputs(d, manifest, outputs, results, spec):
    if spec.get("same_as"):
        manifest["same_as"] = spec["same_as"]
    if spec.get("warns"):
        manifest["warns"] = spec["warns"]
    if spec.get("onnx_error"):
        manifest["onnx_error"] = spec["onnx_error"]
    if spec.get("deeplab_binary"):
        manifest["caffemodel_alone"] = True
    manifest["outputs"] = []
    for i, ((top, _), r) in enumerate(zip(outputs, results)):
        np.save(d / f"output_{i}.npy", r)
        manifest["outputs"].append({"name": top, "npy": f"output_{i}.npy"})
    (d / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{manifest['name']}: " + ", ".join(f"{t}{tuple(r.shape)}" for (t, _), r in zip(outputs, results)))


# --------------------------------------------------------------------------------------------
# A small ResNet in the form of Caffe's ResNet-50 deploy net (issue 6's "must show" for Caffe):
# bias-free convolutions, each with in-place BatchNorm (use_global_stats) + Scale (bias) and
# ReLU where ResNet has one, projection and identity shortcuts joined by Eltwise SUM + ReLU, a
# ceil-rounded MaxPool stem, global AVE pooling, InnerProduct, Softmax.
# --------------------------------------------------------------------------------------------

def resnet_small():
    """The net's prototxt text and blob shapes, written block by block as ResNet-50 names them."""
    text = ['name: "resnet_small"',
            'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 16 dim: 16 } } }']
    blobs = {}

    def conv_bn(name, bottom, cin, cout, k, stride=1, pad=0, relu=True):
        text.append(f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}" convolution_param '
                    f'{{ num_output: {cout} kernel_size: {k} stride: {stride} pad: {pad} bias_term: false }} }}')
        text.append(f'layer {{ name: "bn_{name}" type: "BatchNorm" bottom: "{name}" top: "{name}" '
                    'batch_norm_param { use_global_stats: true } }')
        text.append(f'layer {{ name: "scale_{name}" type: "Scale" bottom: "{name}" top: "{name}" scale_param {{ bias_term: true }} }}')
        if relu:
            text.append(f'layer {{ name: "{name}_relu" type: "ReLU" bottom: "{name}" top: "{name}" }}')
        blobs.update({name: [(cout, cin, k, k)], f"bn_{name}": [(cout,)], f"scale_{name}": [(cout,), (cout,)]})
        return name

    def block(name, bottom, cin, mid, cout, stride, projection):
        shortcut = conv_bn(f"{name}_branch1", bottom, cin, cout, 1, stride, relu=False) if projection else bottom
        a = conv_bn(f"{name}_branch2a", bottom, cin, mid, 1, stride)
        b = conv_bn(f"{name}_branch2b", a, mid, mid, 3, pad=1)
        c = conv_bn(f"{name}_branch2c", b, mid, cout, 1, relu=False)
        text.append(f'layer {{ name: "{name}" type: "Eltwise" bottom: "{shortcut}" bottom: "{c}" top: "{name}" }}')
        text.append(f'layer {{ name: "{name}_relu" type: "ReLU" bottom: "{name}" top: "{name}" }}')
        return name

    conv_bn("conv1", "data", 3, 8, 3, stride=2, pad=1)
    text.append('layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" '
                'pooling_param { pool: MAX kernel_size: 3 stride: 2 } }')
    x = block("res2a", "pool1", 8, 4, 16, 1, projection=True)
    x = block("res2b", x, 16, 4, 16, 1, projection=False)
    x = block("res3a", x, 16, 8, 32, 2, projection=True)
    text.append(f'layer {{ name: "pool5" type: "Pooling" bottom: "{x}" top: "pool5" '
                'pooling_param { pool: AVE global_pooling: true } }')
    text.append('layer { name: "fc5" type: "InnerProduct" bottom: "pool5" top: "fc5" inner_product_param { num_output: 5 } }')
    text.append('layer { name: "prob" type: "Softmax" bottom: "fc5" top: "prob" }')
    blobs["fc5"] = [(5, 32), (5,)]
    return "\n".join(text) + "\n", blobs


RESNET_SMALL, RESNET_SMALL_BLOBS = resnet_small()
NETS["resnet_small"] = dict(
    text=RESNET_SMALL, blobs=RESNET_SMALL_BLOBS, inputs={"data": (3, 16, 16)},
    description="Small ResNet in Caffe ResNet-50 form: 12 bias-free Convolutions with in-place BatchNorm + Scale "
                "(+ ReLU), projection and identity blocks joined by Eltwise SUM + ReLU, MaxPool stem, global AVE "
                "pooling, InnerProduct, Softmax. The optimizer must leave no BatchNorm, Scale or ReLU node.")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", help="net names to (re)generate")
    args = parser.parse_args()
    names = args.only or list(NETS)
    for n in names:
        make(n, NETS[n])
    sys.stdout.flush()
    os._exit(0)  # without destroying the OpenCV nets (above)


if __name__ == "__main__":
    main()
