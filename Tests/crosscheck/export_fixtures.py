"""Which fixtures Ferry writes as Keras models (shared by test_keras_export.py and
tools/crosscheck_export.py, which runs them in real Keras)."""

# Keras fixtures Ferry writes back to Keras, and the ones whose layers stay one for one
# (nested models are written flat; a Sequential becomes a Functional model).
KERAS_TO_KERAS = ["cnn_flatten", "concat_family", "conv2d_family", "conv_out", "functional_in_sequential", "mlp",
                  "mlp_linear", "nested_shared", "preprocessing", "slash_names", "two_outputs", "cnn_gap"]
# Loaded by Ferry but not yet by real Keras: a shared layer is written once per call, and the
# weights then do not follow Keras's own layer order.
NOT_IN_REAL_KERAS = ["nested_shared"]
FLAT = ["cnn_flatten", "concat_family", "conv_out", "mlp_linear", "two_outputs", "cnn_gap", "conv2d_family"]
# Layer names with `/` (Keras 2) are written with `_`, which Keras 3 requires: slash_names.
# Written with their weights moved or dropped: Normalization becomes Rescaling (its statistics
# in the config), Dropout (an identity at inference) is left out.
WEIGHTS_MOVED = ["preprocessing"]
CAFFE_TO_KERAS = ["lenet", "lenet_v1", "lenet_mixed", "eltwise", "inplace_split",
                  "mobilenet_block", "resnet_bottleneck", "batchnorm_zero_factor", "train_val"]
# Fixtures whose ONNX file Ferry's ONNX importer cannot read back yet (the ONNX issue).
ONNX_IMPORT_LACKS = {"concat_family": "the ONNX importer has no Concat yet"}
