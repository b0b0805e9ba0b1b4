"""Caffe export (`ferry convert X Y.prototxt`), checked in OpenCV 4.x's Caffe importer:
every Keras fixture Caffe can express is converted, read with cv2.dnn.readNetFromCaffe, run, and
compared with Keras's own predict(); every Caffe fixture is written back to Caffe, run in OpenCV
against its reference outputs, and keeps its layer names and types; the fixtures Caffe cannot
express fail with exit 2 naming the layer and the reason. The Caffe net is channels-first: a
Keras model's NHWC inputs are fed transposed to NCHW and its NHWC outputs come back NCHW."""
import json
import re

import cv2
import numpy as np
import pytest

from conftest import KERAS_FIXTURES, ROOT, ferry, output_file_name, within_tolerance
from export_fixtures import ONNX_IMPORT_LACKS

CAFFE_FIXTURES = ROOT / "fixtures" / "caffe"

# Keras fixtures whose every layer has a Caffe equivalent (keras2.h5 and keras3.h5 files).
KERAS_TO_CAFFE = ["activations_k3", "cnn_flatten", "cnn_gap", "concat_family", "conv1d_family", "conv2d_family", "conv_out", "conv_transpose",
                  "conv_transpose_padding", "core_misc",
                  "functional_in_sequential", "keras_operations", "mlp", "mlp_linear", "nested_shared", "preprocessing",
                  "slash_names", "tf_op_lambda", "two_outputs"]

# Fixtures Caffe cannot express, with the layer the error names and why.
UNEXPRESSIBLE = {
    "keras/activation_layers": ("relu_threshold (ReLU)", "Caffe has no layer for ThresholdedRelu"),
    "keras/activations": ("act_gelu (Dense)", "Caffe has no layer for Gelu with erf"),
    "keras/conv3d_family": ("conv3d (Conv3D)", "3-D convolution"),
    "keras/dot_family": ("dot_vec (Dot)", "Caffe has no layer for ReduceSum"),
    "keras/norm_family": ("layernorm_last (LayerNormalization)", "Caffe has no layer for LayerNormalization"),
    "keras/reshaping_family": ("zeropad1d (ZeroPadding1D)", "Caffe has no layer for Pad"),
}


def top_level_layers(text):
    """The text of each top-level `layer { ... }` of a prototxt (any layout), its nested
    messages cut out (their `name`s and `top`s are not the layer's)."""
    text = re.sub(r"#.*", "", text)
    layers = []
    for start in re.finditer(r"(?m)^\s*layer\s*\{", text):
        depth, i, own = 1, start.end(), []
        while depth and i < len(text):
            c = text[i]
            depth += c == "{"
            depth -= c == "}"
            if depth == 1 and c not in "{}":
                own.append(c)
            elif depth == 1 and c == "}":
                own.append(" ")
            i += 1
        layers.append("".join(own))
    return layers


def opencv_outputs(prototxt, feeds, blobs):
    """OpenCV's values of the named blobs (OpenCV names outputs by layer: the last layer writing each blob)."""
    writer = {}
    for layer in top_level_layers(prototxt.read_text()):
        name = re.search(r'\bname:\s*"([^"]*)"', layer).group(1)
        for i, top in enumerate(re.findall(r'\btop:\s*"([^"]*)"', layer)):
            writer[top] = (name, i)
    # OpenCV's forward() gives a layer's first top only (a Slice keeping its middle part has others).
    assert all(writer[b][1] == 0 for b in blobs), "an output is not its layer's first top"
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(prototxt.with_suffix(".caffemodel")))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    for name, array in feeds.items():
        net.setInput(np.ascontiguousarray(array, dtype=np.float32), name)
    return net.forward([writer[b][0] for b in blobs])


def layout_changes(stdout):
    """The `layout:` lines of `ferry convert`: {name: (is_input, ...)}."""
    return {m.group(2): m.group(1) for m in re.finditer(r"^layout: (input|output) (\S+): channels-last", stdout, re.M)}


# Keras fixtures whose Caffe net written through ONNX OpenCV 4.12 cannot run: the optimized ONNX
# graph holds Dense on a 4-D input as a 1x1 convolution whose bias is a Scale over another axis
# (axis 2), and OpenCV fuses any Scale after a Convolution into its weights as if per channel
# (an assertion in fuseWeights). The direct Keras -> Caffe net runs in OpenCV.
OPENCV_MISFUSES_VIA_ONNX = {"core_misc": "Scale with axis 2 after a Convolution"}


def h5_variants(names):
    """One case per .h5 file of each named Keras fixture."""
    cases = []
    for name in names:
        manifest = json.loads((KERAS_FIXTURES / name / "manifest.json").read_text())
        for variant in manifest["variants"]:
            if variant["file"].endswith(".h5"):
                cases.append(pytest.param(KERAS_FIXTURES / name, variant, id=f"{name}-{variant['file']}"))
    return cases


def keras_variants():
    return h5_variants(KERAS_TO_CAFFE)


@pytest.mark.parametrize("via_onnx", [False, True], ids=["direct", "via-onnx"])
@pytest.mark.parametrize("model_dir,variant", keras_variants())
def test_keras_fixture_runs_in_opencv(model_dir, variant, via_onnx, tmp_path):
    """Keras -> Caffe, and Keras -> ONNX -> Caffe (the ONNX file keeps the NHWC interface)."""
    prototxt = tmp_path / "net.prototxt"
    source = model_dir / variant["file"]
    if via_onnx:
        if model_dir.name in ONNX_IMPORT_LACKS:
            pytest.skip(ONNX_IMPORT_LACKS[model_dir.name])
        ferry("convert", source, tmp_path / "model.onnx", check=True)
        source = tmp_path / "model.onnx"
    result = ferry("convert", source, prototxt, check=True)
    assert prototxt.exists() and prototxt.with_suffix(".caffemodel").exists()
    changed = layout_changes(result.stdout)
    feeds = {}
    for inp in variant["inputs"]:
        array = np.load(model_dir / inp["npy"])
        if changed.get(inp["name"]) == "input":
            array = np.moveaxis(array, -1, 1)
        feeds[inp["name"]] = array
    names = [o["name"] for o in variant["outputs"]]
    if via_onnx and model_dir.name in OPENCV_MISFUSES_VIA_ONNX:
        # OpenCV fails on the written net (else the entry is stale): Ferry runs it instead.
        with pytest.raises(cv2.error, match="fuseWeights"):
            opencv_outputs(prototxt, feeds, names)
        args = ["run", prototxt, "--output-dir", tmp_path / "out"]
        for name, array in feeds.items():
            np.save(tmp_path / f"{name}.npy", array)
            args += ["--input", f"{name}={tmp_path / f'{name}.npy'}"]
        ferry(*args, check=True)
        results = [np.load(tmp_path / "out" / output_file_name(n)) for n in names]
    else:
        results = opencv_outputs(prototxt, feeds, names)
    for out, result in zip(variant["outputs"], results):
        if changed.get(out["name"]) == "output":
            result = np.moveaxis(result, 1, -1)
        reference = np.load(model_dir / out["npy"])
        within_tolerance(result.reshape(reference.shape) if result.size == reference.size and result.ndim != reference.ndim
                         else result, reference)


# Keras fixtures refused as a whole (UNEXPRESSIBLE) whose other outputs Caffe expresses: the
# outputs each of these runs in OpenCV, the model cut to them (Keras -> ONNX, cut with
# onnx.utils.extract_model, -> Caffe). The activations Caffe has no layer for are written as
# chains of its layers (HardSigmoid, Softsign, LogSoftmax, Selu, ReLU's max_value, PReLU with a
# slope per cell, Gelu's tanh approximation; Mish reaches
# Caffe through ONNX as Softplus, Tanh and Mul).
KERAS_OUTPUTS_TO_CAFFE = {
    # (Keras layer, last part of the name of a layer of its chain written for it)
    "activations": {"left out": ["act_gelu"], "chains": [("act_hard_sigmoid", "relu6"), ("act_softsign", "abs"),
                                                         ("act_log_softmax", "log"), ("act_selu", "elu")]},
    # tf_keras and Keras 3 name the outputs differently; the exact Gelu (erf) is left out.
    # Through ONNX opset 20, which has Gelu (opset 17 spells it out in elementary ops).
    "gelu_approximate": {"left out": ["tf.nn.gelu_1", "gelu_1", "gelu_layer"], "opset": "20",
                         "chains": [(("gelu_2", "tf.nn.gelu_2"), "tanh")]},
    "activation_layers": {"left out": ["relu_threshold"], "chains": [("relu_max", "relu"), ("relu_max_slope", "relu"),
                                                                     ("prelu_full", "slope")]},
}


def keras_output_cases():
    return h5_variants(KERAS_OUTPUTS_TO_CAFFE)


@pytest.mark.parametrize("model_dir,variant", keras_output_cases())
def test_keras_outputs_caffe_expresses_run_in_opencv(model_dir, variant, tmp_path):
    import onnx.utils
    wanted = KERAS_OUTPUTS_TO_CAFFE[model_dir.name]
    ferry("convert", model_dir / variant["file"], tmp_path / "full.onnx", "--opset", wanted.get("opset", "17"), check=True)
    kept = [o for o in variant["outputs"] if o["name"] not in wanted["left out"]]
    assert kept and len(kept) < len(variant["outputs"])
    onnx.utils.extract_model(str(tmp_path / "full.onnx"), str(tmp_path / "model.onnx"),
                             [i["name"] for i in variant["inputs"]], [o["name"] for o in kept])
    prototxt = tmp_path / "net.prototxt"
    result = ferry("convert", tmp_path / "model.onnx", prototxt, check=True)
    layer_names = {re.search(r'\bname:\s*"([^"]*)"', l).group(1) for l in top_level_layers(prototxt.read_text())}
    for layer, part in wanted["chains"]:
        names = layer if isinstance(layer, tuple) else (layer,)  # (Keras 3 name, tf_keras name)
        assert any(n.split("/")[0] in names and n.endswith("/" + part) for n in layer_names), (layer, part, sorted(layer_names))
    changed = layout_changes(result.stdout)
    feeds = {}
    for inp in variant["inputs"]:
        array = np.load(model_dir / inp["npy"])
        feeds[inp["name"]] = np.moveaxis(array, -1, 1) if changed.get(inp["name"]) == "input" else array
    for out, result in zip(kept, opencv_outputs(prototxt, feeds, [o["name"] for o in kept])):
        if changed.get(out["name"]) == "output":
            result = np.moveaxis(result, 1, -1)
        within_tolerance(result, np.load(model_dir / out["npy"]))


def caffe_ok_fixtures():
    cases = []
    for manifest_path in sorted(CAFFE_FIXTURES.glob("*/manifest.json")):
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("expect", "ok") == "ok" and f"caffe/{manifest['name']}" not in UNEXPRESSIBLE:
            cases.append(pytest.param(manifest_path.parent, manifest, id=manifest["name"]))
    return cases


# Nets whose layers OpenCV reads otherwise than Caffe (the fixture's reference.prototxt is the
# rewrite OpenCV ran): written back as the source's layers, they run in OpenCV as the source net
# does there, and Ferry reading them back agrees with the reference.
OPENCV_READS_OTHERWISE = {
    # OpenCV cannot read the source's 0-d PReLU slope, which Ferry writes as shape (1,): the
    # written net's outputs in OpenCV are compared with the reference, but Swish's (OpenCV ignores beta).
    "activations": "Swish's beta; OpenCV misreads only the swish output",
    "lrn": "LRN's k, WITHIN_CHANNEL windows and defaults",
    "math": "Exp and Log with a base, Power with a scale or shift",
    "fcn": "Deconvolution's dilation",
    "shapes": "InnerProduct's transpose: true (OpenCV ignores it)",
    "ssd_head": "PriorBox (the fixture's reference.prototxt is the rewrite OpenCV ran)",
}
# Nets OpenCV cannot read (their reference.prototxt is a rewrite it reads): written back as the
# source's layers, OpenCV still fails on the source net (else the entry is stale), and Ferry
# reading the written net back agrees with the reference.
OPENCV_CANNOT_READ = {
    "pooling_floor": "round_mode: FLOOR (OpenCV's caffe.proto has a bool ceil_mode at that field number)",
    "scale_forms": "the Bias layer (OpenCV has none)",
    "ssd_detection_options": "DetectionOutput's code_type CORNER_SIZE (OpenCV's caffe.proto has no such value)",
}
# The forks' depthwise types are a grouped Convolution.
SAME_TYPE = {"DepthwiseConvolution": "Convolution", "ConvolutionDepthwise": "Convolution"}


def layer_table(model):
    summary = json.loads(ferry("inspect", model, "--json", "--no-optimize", check=True).stdout)
    return [(row["name"], SAME_TYPE.get(row["type"], row["type"])) for row in summary["layers"] if row["type"] != "Input"]


def ferry_run_outputs(prototxt, model_dir, manifest, tmp_path):
    """Ferry's outputs of a written net on the fixture's inputs, in the manifest's order."""
    args = ["run", prototxt, "--output-dir", tmp_path / "out"]
    for inp in manifest["inputs"]:
        args += ["--input", f"{inp['name']}={model_dir / inp['npy']}"]
    ferry(*args, check=True)
    return [np.load(tmp_path / "out" / output_file_name(out["name"])) for out in manifest["outputs"]]


@pytest.mark.parametrize("model_dir,manifest", caffe_ok_fixtures())
def test_caffe_fixture_round_trip_runs_in_opencv(model_dir, manifest, tmp_path):
    prototxt = tmp_path / "net.prototxt"
    result = ferry("convert", model_dir / "net.prototxt", prototxt, check=True)
    assert "layout:" not in result.stdout, "a Caffe model keeps its layout"
    # Layer names and types survive Caffe -> Ferry -> Caffe (the Input layers aside), also of the
    # layers Ferry reads as several ops (written back from the importer's records).
    assert layer_table(prototxt) == layer_table(model_dir / "net.prototxt")
    feeds = {inp["name"]: np.load(model_dir / inp["npy"]) for inp in manifest["inputs"]}
    names = [o["name"] for o in manifest["outputs"]]
    if manifest["name"] in OPENCV_CANNOT_READ:
        with pytest.raises(cv2.error):
            opencv_outputs(model_dir / "net.prototxt", feeds, names)
    if manifest["name"] in OPENCV_READS_OTHERWISE or manifest["name"] in OPENCV_CANNOT_READ:
        assert (model_dir / "reference.prototxt").exists() or manifest["name"] in OPENCV_CANNOT_READ
        if manifest["name"] == "activations":
            written = dict(zip(names, opencv_outputs(prototxt, feeds, names)))
            assert np.abs(written["swish"] - np.load(model_dir / manifest["outputs"][names.index("swish")]["npy"])).max() > 1e-3
            for out in manifest["outputs"]:
                if out["name"] != "swish":
                    within_tolerance(written[out["name"]], np.load(model_dir / out["npy"]))
        elif manifest["name"] in OPENCV_READS_OTHERWISE:
            for written, source in zip(opencv_outputs(prototxt, feeds, names),
                                       opencv_outputs(model_dir / "net.prototxt", feeds, names)):
                within_tolerance(written, source)
        for out, result in zip(manifest["outputs"], ferry_run_outputs(prototxt, model_dir, manifest, tmp_path)):
            within_tolerance(result, np.load(model_dir / out["npy"]))
        return
    if manifest["reference"].startswith("OpenCV"):
        results = opencv_outputs(prototxt, feeds, names)
    else:
        # OpenCV cannot run the net (Clip) or fetch the output: Ferry runs the written files.
        results = ferry_run_outputs(prototxt, model_dir, manifest, tmp_path)
    for out, result in zip(manifest["outputs"], results):
        within_tolerance(result, np.load(model_dir / out["npy"]))


# Caffe -> ONNX -> Caffe: the Caffe fixtures whose ONNX file Ferry cannot write (the ONNX export
# fails naming the layer), and those whose ONNX form the Caffe writer cannot map back, with why.
CAFFE_TO_ONNX_LACKS = {
    "ssd_detection": "ONNX has no DetectionOutput",
    "ssd_detection_options": "ONNX has no DetectionOutput",
    "upsample_unpool": "ONNX has no max-pooling mask or max unpooling with Caffe's per-plane indices",
}
CAFFE_VIA_ONNX_LACKS = {
    # ArgMax with top_k comes back from its record only (a reversing Slice before a TopK, which
    # Caffe's Slice cannot do): the optimizer that wrote the ONNX file dropped top3_values's unused
    # index nodes (and shares the reversal with top3), so that record no longer matches.
    "argmax_topk": "steps [-1]: Caffe slices with step 1 only",
    # Windows past the input (a MaxPool and a Pad of -FLT_MAX) come back from their records only;
    # the ONNX file restates Caffe's ceil-rounded windows as floor rounding with end pads (the same
    # windows), so the recorded MaxPool no longer matches, and no ceil-rounding Caffe Pooling
    # gives the floor-rounded one's windows.
    "pooling_sparse": "has no Caffe equivalent",
}


@pytest.mark.parametrize("model_dir,manifest", caffe_ok_fixtures())
def test_caffe_fixture_through_onnx_back_to_caffe(model_dir, manifest, tmp_path):
    """Caffe -> ONNX -> Caffe: the written net keeps the source's interface (no layout change),
    runs in Ferry against the fixture's references, and in OpenCV where the direct round trip
    does; the nets listed above fail cleanly (exit 2, the reason, no file)."""
    name = manifest["name"]
    result = ferry("convert", model_dir / "net.prototxt", tmp_path / "model.onnx")
    if name in CAFFE_TO_ONNX_LACKS:
        assert result.returncode == 2 and CAFFE_TO_ONNX_LACKS[name] in result.stderr, result.stderr
        return
    assert result.returncode == 0, result.stderr
    prototxt = tmp_path / "net.prototxt"
    result = ferry("convert", tmp_path / "model.onnx", prototxt)
    if name in CAFFE_VIA_ONNX_LACKS:
        assert result.returncode == 2, result.stdout
        error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(error) == 1 and "Caffe cannot express" in error[0] and CAFFE_VIA_ONNX_LACKS[name] in error[0], result.stderr
        assert not prototxt.exists() and not prototxt.with_suffix(".caffemodel").exists()
        return
    assert result.returncode == 0, result.stderr
    assert "layout:" not in result.stdout, "a Caffe model keeps its layout through ONNX"
    for out, result in zip(manifest["outputs"], ferry_run_outputs(prototxt, model_dir, manifest, tmp_path)):
        within_tolerance(result, np.load(model_dir / out["npy"]))
    if manifest["reference"].startswith("OpenCV") and name not in OPENCV_READS_OTHERWISE and name not in OPENCV_CANNOT_READ:
        feeds = {inp["name"]: np.load(model_dir / inp["npy"]) for inp in manifest["inputs"]}
        names = [o["name"] for o in manifest["outputs"]]
        for out, res in zip(manifest["outputs"], opencv_outputs(prototxt, feeds, names)):
            within_tolerance(res, np.load(model_dir / out["npy"]))


def test_constant_output_is_refused_not_dropped(tmp_path):
    """An ONNX model with a constant among its outputs (no PriorBox record to write it from):
    no Caffe layer makes it, so the export fails naming it rather than leaving it out."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")], "constant_output",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 3]),
         helper.make_tensor_value_info("table", TensorProto.FLOAT, [4])],
        [numpy_helper.from_array(np.arange(4, dtype=np.float32), "table")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "model.onnx")
    result = ferry("convert", tmp_path / "model.onnx", tmp_path / "net.prototxt")
    assert result.returncode == 2, result.stdout
    assert "Caffe cannot express output 'table': it is a constant" in result.stderr, result.stderr
    assert not (tmp_path / "net.prototxt").exists() and not (tmp_path / "net.caffemodel").exists()


@pytest.mark.parametrize("fixture", sorted(UNEXPRESSIBLE))
def test_unexpressible_fixtures_fail_naming_the_layer(fixture, tmp_path):
    kind, name = fixture.split("/")
    source = KERAS_FIXTURES / name / "keras3.h5" if kind == "keras" else CAFFE_FIXTURES / name / "net.prototxt"
    layer, reason = UNEXPRESSIBLE[fixture]
    result = ferry("convert", source, tmp_path / "out.prototxt")
    assert result.returncode == 2, result.stdout + result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1, result.stderr
    assert f": {layer}: Caffe cannot express" in error[0], error[0]
    assert reason in error[0], error[0]
    assert not list(tmp_path.iterdir()), "a failed export leaves no file"


def test_existing_output_needs_force(tmp_path):
    source = KERAS_FIXTURES / "mlp" / "keras3.h5"
    (tmp_path / "net.caffemodel").write_bytes(b"old")
    result = ferry("convert", source, tmp_path / "net.prototxt")
    assert result.returncode == 2 and "net.caffemodel: exists already" in result.stderr
    assert not (tmp_path / "net.prototxt").exists()
    ferry("convert", source, tmp_path / "net.prototxt", "--force", check=True)
    assert (tmp_path / "net.caffemodel").read_bytes() != b"old"
