"""Which fixtures Ferry writes as Keras models (shared by test_keras_export.py and
tools/crosscheck_export.py, which runs them in real Keras)."""
import json

# Keras fixtures Ferry writes back to Keras, and the ones whose layers stay one for one in a
# .keras zip (its nested models are written flat there; the .h5 keeps them nested).
KERAS_TO_KERAS = ["cnn_flatten", "concat_family", "conv2d_family", "conv_out", "functional_in_sequential", "mlp",
                  "mlp_linear", "nested_shared", "preprocessing", "slash_names", "two_outputs", "cnn_gap",
                  "conv1d_family", "conv3d_family", "conv_transpose", "conv_transpose_padding", "recurrent_family",
                  "bidirectional_family", "norm_family", "embedding", "reshaping_family", "recurrent_stateful",
                  "activations", "activation_layers", "thresholded_relu", "tf_op_lambda", "dot_family", "time_distributed",
                  "norm_axes", "resampling", "attention", "resampling_filters", "core_misc", "multi_head_attention",
                  "attention_masks", "attention_mask_none", "mha_robust_masking", "rnn_cells", "masking",
                  "resampling_filters_k2"]
# Loaded by Ferry but not by real Keras.
NOT_IN_REAL_KERAS = []
# Keras 3 cannot load (or run) these Keras 2 layout files, not even the one tf_keras itself wrote
# (tools/crosscheck_export.py checks that it still cannot, then skips Ferry's .h5 in Keras 3).
KERAS3_CANNOT_READ_KERAS2 = {
    "functional_in_sequential": "a nested model in the Keras 2 layout",
    "nested_shared": "a nested model in the Keras 2 layout",
    # Ferry's file fails on the initial states (tf_keras lists them as further inbound tensors,
    # which Keras 3's loader passes to a one-input layer); tf_keras's already on time_major.
    "recurrent_family": "a nested model, and recurrent layers called with initial_state, in the Keras 2 layout",
    "thresholded_relu": "ThresholdedReLU, which Keras 3 removed (written back as the source's layer)",
    "attention": "tf_keras's Attention config, which Keras 3 fails to deserialize (written back as the source's)",
    "attention_masks": "tf_keras's Attention config, which Keras 3 fails to deserialize (written back as the source's)",
    "attention_mask_none": "tf_keras's Attention config, which Keras 3 fails to deserialize (written back as the source's)",
    "mha_robust_masking": "tf_keras's MultiHeadAttention option softmax_robust_masking, which Keras 3 has not",
    "resampling_filters_k2": "tf_keras's gaussian and mitchellcubic interpolations: Keras 3 loads the layers and "
                             "fails calling them",
    "rnn_cells": "tf_keras's RNN config (time_major), which Keras 3's constructor rejects (the .keras leaves it out), "
                 "and RNN layers called with initial states in the Keras 2 layout",
    "multi_head_attention": "tf_keras's MultiHeadAttention config (query_shape, key_shape, value_shape, "
                            "softmax_robust_masking), which Keras 3's constructor rejects (the .keras leaves them out)",
}
# Keras fixtures Ferry writes as .h5 but refuses as a .keras zip (the .keras error is checked).
ZIP_UNEXPRESSIBLE = {
    "mha_robust_masking": "softmax_robust_masking is tf_keras's; Keras 3's MultiHeadAttention has no such option",
    "resampling_filters_k2": "interpolation 'gaussian' is tf_keras's; Keras 3's Resizing has no such filter",
}
# tools/crosscheck_export.py writes each Keras fixture's .keras from its keras2.h5, but these from
# keras3.keras: keras2.h5 has a function only a Keras 2 layout .h5 can name.
ZIP_FROM_KERAS3 = {"activations": "keras2.h5's hard_sigmoid is Keras 2's clip(0.2 x + 0.5)",
                   # Where a query sees no key, tf_keras's MultiHeadAttention weighs the values uniformly
                   # and Keras 3.15's, returning its scores, gives zeros: a .keras means Keras 3's.
                   "attention_masks": "keras2.h5's MultiHeadAttention hides keys as tf_keras does, which Keras 3 "
                                      "reads otherwise where a query sees no key"}
# Keras 3 reads these Keras 2 layout files, but gives a name Keras 2's file means otherwise
# another function: tools/crosscheck_export.py checks that tf_keras's own file, in Keras 3,
# still differs from the reference, and that Ferry's file gives what tf_keras's does there.
KERAS3_READS_KERAS2_OTHERWISE = {
    "activations": "hard_sigmoid: clip(0.2 x + 0.5) in Keras 2, relu6(x + 3) / 6 in Keras 3",
}
FLAT = ["cnn_flatten", "concat_family", "conv_out", "mlp_linear", "two_outputs", "cnn_gap", "conv2d_family",
        "conv1d_family", "conv3d_family", "conv_transpose", "conv_transpose_padding", "bidirectional_family", "norm_family",
        "embedding", "reshaping_family", "activations", "activation_layers", "dot_family", "time_distributed", "resampling",
        "layernorm_rms", "resampling_options_k3", "attention", "resampling_filters", "core_misc", "multi_head_attention",
        "attention_masks", "attention_mask_none", "rnn_cells", "masking"]
# Keras 3 fixtures with no keras2.h5 (layers tf_keras has not): written as .h5 and .keras from
# keras3.h5 / keras3.keras, checked by Ferry reading them back and in Keras 3 (not tf_keras).
KERAS3_ONLY = {"layernorm_rms": "LayerNormalization(rms_scaling=True), which tf_keras has not",
               "resampling_options_k3": "Resizing with antialias, lanczos3, area and pad_to_aspect_ratio, which tf_keras has not",
               "keras_operations": "Keras 3 operations on Keras tensors (x + 3.0, 2.0 - x, ...), which tf_keras has not"}
# What a KERAS3_ONLY fixture's layers become on purpose (same names; the classes listed change).
KERAS3_ONLY_CHANGES = {
    # Keras 3's operation layers (keras.ops, not keras.layers) with a number operand are written as
    # the built-in layer computing them, as tf_keras's TFOpLambda is (`2.0 - x` is x * -1 + 2).
    "keras_operations": {"Add": "Rescaling", "Multiply": "Rescaling", "Subtract": "Rescaling", "TrueDivide": "Rescaling"},
}
CAFFE_TO_KERAS = ["lenet", "lenet_v1", "lenet_mixed", "eltwise", "inplace_split",
                  "mobilenet_block", "resnet_bottleneck", "batchnorm_zero_factor", "train_val", "shapes",
                  "shuffle_channel", "resnet_small", "upsample", "activations", "conv_forms", "embed", "inception",
                  "pooling_floor", "pooling_relu", "tile", "crop_all_axes", "fcn"]
# Fixtures whose ONNX file Ferry's ONNX importer cannot read back yet (the ONNX issue).
ONNX_IMPORT_LACKS: dict[str, str] = {}  # every Keras fixture reads back from its ONNX export
# Keras -> ONNX -> Keras: fixtures whose ONNX form the Keras writer cannot map back to the layers.
KERAS_VIA_ONNX_LACKS = {
    "activations": "the source is keras3.h5, whose hard_sigmoid (Keras 3's) a Keras 2 layout .h5 cannot name, and "
                   "ONNX opset 17 has no Gelu (Ferry writes it with Erf, which has no Keras layer)",
    "core_misc": "the optimizer folds BatchNormalization(axis=1) after a Dense on a 4-D input into the Dense's 1x1 "
                 "Conv, a Mul by per-row constants and an Add of the Dense's bias times them plus the shift, a "
                 "constant varying along two axes, which no Keras layer adds (Rescaling scales along the last axis only)",
}

# Keras -> ONNX -> Keras fixtures whose .h5 (the Keras 2 layout, read as tf_keras means it) computes
# what tf_keras's source does, not the Keras 3 source's: compared with keras2.h5's references
# (`ferry convert` warns naming the layer: test_keras_export.py's MEANING_WARNINGS).
VIA_ONNX_KERAS2_MEANING = {
    "attention_masks": "mha_cross_masked returns its scores: where a query sees no key, Keras 3.15 gives zeros and "
                       "tf_keras (the .h5's reader) uniform weights",
}

# What Keras -> Ferry -> Keras (.h5) changes on purpose; everything else (model class, layer names
# and classes, inbound nodes with shared layers' and nested models' calls, input and output layers,
# layer_names, weight_names, weights bit for bit) is compared with the source (keras2.h5).
ROUND_TRIP_CHANGES = {
    # Keras 3 forbids `/` in layer names; Ferry writes `_` so that both Keras versions load the file.
    "slash_names": "names with / written with _",
    # Dropout is the identity at inference; the IR keeps no rate, so the layer is left out.
    "mlp": "Dropout left out",
    # The same for the other layers that are identities at inference (INFERENCE_IDENTITIES).
    "core_misc": "inference identities left out",
    # Normalization's statistics become a Rescaling's scale and offset (WEIGHTS_MOVED).
    "preprocessing": "Normalization written as Rescaling",
    "norm_axes": "Normalization written as Rescaling",
    # TFOpLambda is tf_keras's record of a TensorFlow function call (Keras 3 cannot load it): its
    # arithmetic is written as the built-in layer computing it, under the same name.
    "tf_op_lambda": "TFOpLambda written as built-in layers",
}

# The built-in layer a TFOpLambda's function becomes: with a tensor operand, and with a number.
TF_OP_LAYERS = {"__operators__.add": ("Add", "Rescaling"), "math.add": ("Add", "Rescaling"),
                "math.subtract": ("Subtract", "Rescaling"), "math.multiply": ("Multiply", "Rescaling"),
                "math.truediv": (None, "Rescaling")}


def _tf_op_layer(layer):
    """(class, inbound nodes) a TFOpLambda is written as: its tensor operand `y` an inbound tensor."""
    nodes, cls = [], None
    for node in layer["inbound_nodes"]:
        # tf_keras writes a TFOpLambda's call as [layer, node, tensor, kwargs], not a list of them.
        first = node if isinstance(node[0], str) else node[0]
        y = first[3].get("y")
        tensor = isinstance(y, list)
        cls = TF_OP_LAYERS[layer["config"]["function"]][0 if tensor else 1]
        nodes.append([first[:3] + [{}]] + ([y[:3] + [{}]] if tensor else []))
    return cls, nodes


# Layers that compute the identity at inference, which Ferry leaves out (their readers read their input).
INFERENCE_IDENTITIES = {"Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
                        "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Identity"}


def _decoded(values):
    return [v.decode() if isinstance(v, bytes) else v for v in values]


def keras_h5_structure(path, name=None):
    """(structure, weights) of a Keras 2 layout .h5, normalized by ROUND_TRIP_CHANGES[name] when
    given: structure is the model class with, per layer (recursing into nested models), its name,
    class and inbound nodes, and the model's input and output layers; weights is layer_names
    with, per layer, its weight_names, shapes, dtypes and bytes."""
    import h5py
    change = ROUND_TRIP_CHANGES.get(name, "")
    rename = (lambda n: n.replace("/", "_")) if change.startswith("names with /") else (lambda n: n)

    def weight_rename(weight):  # <layer>/<weight>:0: the layer part renamed
        layer, _, leaf = weight.rpartition("/")
        return f"{rename(layer)}/{leaf}" if layer else leaf

    def refs(value):
        if isinstance(value, list):
            return [refs(v) for v in value]
        return rename(value) if isinstance(value, str) else value

    dropped = []
    normalizations = set()
    # A left-out identity's tensor is its input's: [layer, node, tensor] of the dropped layer -> its input's.
    through = {}

    def bypass(value):
        if isinstance(value, list) and len(value) >= 3 and isinstance(value[0], str) and value[0] in through:
            return bypass(through[value[0]][:3] + value[3:])
        if isinstance(value, list):
            return [bypass(v) for v in value]
        return value

    def model(entry):
        sequential = entry["class_name"] == "Sequential"
        layers = []
        for layer in entry["config"]["layers"]:
            if change == "Dropout left out" and layer["class_name"] == "Dropout":
                assert sequential, "a Dropout is left out of a Sequential only here"
                dropped.append(layer["config"]["name"])
                continue
            if change == "inference identities left out" and layer["class_name"] in INFERENCE_IDENTITIES:
                assert not sequential and len(layer["inbound_nodes"]) == 1, "identities left out of a Functional called once"
                through[layer["config"]["name"]] = layer["inbound_nodes"][0][0][:3]
                dropped.append(layer["config"]["name"])
                continue
            cls = layer["class_name"]
            if change == "Normalization written as Rescaling" and cls == "Normalization":
                cls = "Rescaling"
                normalizations.add(layer["config"]["name"])
            inbound = None if sequential else layer["inbound_nodes"]
            if change.startswith("TFOpLambda written") and cls == "TFOpLambda":
                cls, inbound = _tf_op_layer(layer)
            nested = model(layer) if cls in ("Sequential", "Functional", "Model") else None
            layers.append((rename(layer["config"].get("name", layer.get("name"))), cls,
                           None if sequential else refs(bypass(inbound)), nested))
        config = entry["config"]
        return (entry["class_name"], layers, None if sequential else refs(bypass(config["input_layers"])),
                None if sequential else refs(bypass(config["output_layers"])))

    with h5py.File(path, "r") as f:
        structure = model(json.loads(f.attrs["model_config"]))
        group = f["model_weights"]
        weights = []
        for layer in _decoded(group.attrs["layer_names"]):
            if layer in dropped:
                continue
            names = _decoded(group[layer].attrs["weight_names"])
            if change == "Normalization written as Rescaling" and layer in normalizations:
                names = []  # the statistics are in the Rescaling's config
            weights.append((rename(layer), [(weight_rename(w), group[layer][w].shape, str(group[layer][w].dtype),
                                             group[layer][w][()].tobytes()) for w in names]))
    return structure, weights
