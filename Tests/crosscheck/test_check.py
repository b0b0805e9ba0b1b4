"""`ferry check`, the layer table of `ferry inspect`, and `ferry graph`, on the Keras fixtures."""
import json
import shutil
import xml.etree.ElementTree as ET

import h5py
import numpy as np
import pytest

from conftest import KERAS_FIXTURES, ferry

GAP = KERAS_FIXTURES / "cnn_gap"


@pytest.fixture
def perturbed(tmp_path):
    """A copy of cnn_gap (Keras 3) with one weight of layer conv2 changed."""
    path = tmp_path / "perturbed.h5"
    shutil.copy(GAP / "keras3.h5", path)
    with h5py.File(path, "r+") as f:
        kernel = f["model_weights/conv2/conv2/kernel"]
        kernel[0, 0, 0, 0] += 0.5
    return path


def test_same_model_in_keras2_and_keras3_passes():
    result = ferry("check", GAP / "keras2.h5", GAP / "keras3.h5", "--samples", "3", "--batch", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS" in result.stdout and result.stdout.count("sample ") == 3


def test_perturbed_weight_fails_and_layerwise_names_the_layer(perturbed, tmp_path):
    report, junit = tmp_path / "r.json", tmp_path / "r.xml"
    result = ferry("check", GAP / "keras3.h5", perturbed, "--layerwise", "--report", report, "--junit", junit)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "first layer that diverges: conv2" in result.stdout
    data = json.loads(report.read_text())
    assert data["passed"] is False and data["firstDivergingLayer"] == "conv2"
    layers = {l["layer"]: l["comparison"] for l in data["layers"]}
    # Each layer is fed the reference's inputs, so the layers after conv2 agree again.
    assert layers["conv1"]["passed"] and not layers["conv2"]["passed"] and layers["maxpool"]["passed"]
    out = data["outputs"][0]
    assert out["maxAbsError"] > 1e-3 and 0 < out["cosineSimilarity"] < 1 and out["fractionOutside"] > 0
    suite = ET.parse(junit).getroot()
    assert int(suite.get("failures")) >= 2 and int(suite.get("tests")) == 1 + len(data["layers"])


def test_per_output_tolerance_overrides(perturbed):
    assert ferry("check", GAP / "keras3.h5", perturbed, "--atol", "head=1").returncode == 0
    assert ferry("check", GAP / "keras3.h5", perturbed, "--atol", "other=1").returncode == 1


def test_given_inputs_npy_and_npz(perturbed, tmp_path):
    x = np.load(GAP / "input_0.npy")
    np.savez(tmp_path / "inputs.npz", image=x)
    result = ferry("check", GAP / "keras2.h5", GAP / "keras3.h5", "--input", tmp_path / "inputs.npz")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[2, 5]" in result.stdout  # the given batch of 2, not a random one
    assert ferry("check", GAP / "keras3.h5", perturbed, "--input", f"image={GAP / 'input_0.npy'}").returncode == 1


def test_golden_files(perturbed, tmp_path):
    golden = tmp_path / "golden"
    assert ferry("check", GAP / "keras3.h5", "--save-golden", golden, "--samples", "2").returncode == 0
    assert json.loads((golden / "golden.json").read_text())["samples"][1]["outputs"]["head"]
    assert ferry("check", GAP / "keras2.h5", "--golden", golden).returncode == 0
    assert ferry("check", perturbed, "--golden", golden).returncode == 1


def test_usage_errors_exit_2(tmp_path):
    assert ferry("check", GAP / "keras3.h5").returncode == 2
    assert ferry("check", GAP / "keras3.h5", KERAS_FIXTURES / "mlp" / "keras3.h5").returncode == 2  # inputs differ
    assert ferry("check", GAP / "keras3.h5", tmp_path / "missing.h5").returncode == 2


def test_inspect_layer_table():
    result = ferry("inspect", GAP / "keras3.h5", check=True)
    assert "layer (type)" in result.stdout and "conv1 (Conv2D)" in result.stdout
    summary = json.loads(ferry("inspect", GAP / "keras3.h5", "--json", check=True).stdout)
    rows = {r["name"]: r for r in summary["layers"]}
    assert rows["conv1"]["parameters"] == 5 * 5 * 3 * 12  # no bias
    assert rows["head"]["outputShape"] == ["N", "5"]
    assert sum(r["parameters"] for r in summary["layers"]) == summary["parameters"]
    assert sum(r["flops"] for r in summary["layers"]) == summary["flops"]


def test_graph_svg_and_diff(perturbed, tmp_path):
    svg = tmp_path / "g.svg"
    assert ferry("graph", GAP / "keras3.h5", "-o", svg).returncode == 0
    text = svg.read_text()
    assert "<svg" in text and "Conv" in text and "head" in text
    diff = tmp_path / "d.dot"
    assert ferry("graph", GAP / "keras3.h5", perturbed, "-o", diff).returncode == 0
    dot = diff.read_text()
    assert dot.count("weights differ") == 2 and "only in this model" not in dot
    assert ferry("graph", GAP / "keras3.h5", "-o", tmp_path / "g.png").returncode == 2


def test_model_against_its_own_onnx_export(tmp_path):
    onnx_path = tmp_path / "gap.onnx"
    ferry("convert", GAP / "keras3.h5", onnx_path, check=True)
    result = ferry("check", GAP / "keras3.h5", onnx_path, "--layerwise", "--samples", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    # Source layers survive the ONNX file (doc_string), fused nodes included.
    assert "conv1 (Conv2D): ok" in result.stdout and "head (Dense): ok" in result.stdout


def test_perturbed_onnx_export_names_the_layer(perturbed, tmp_path):
    onnx_path = tmp_path / "perturbed.onnx"
    ferry("convert", perturbed, onnx_path, "--no-optimize", check=True)
    result = ferry("check", GAP / "keras3.h5", onnx_path, "--layerwise")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "first layer that diverges: conv2" in result.stdout


def nchw_copy(onnx_path, out_path):
    """The exported ONNX of a Keras model without its edge Transposes: the same network with
    NCHW inputs and outputs, as a Caffe or PyTorch export would have it."""
    import onnx
    from onnx import helper

    model = onnx.load(onnx_path)
    g = model.graph
    first = next(n for n in g.node if n.op_type == "Transpose" and n.input[0] == g.input[0].name)
    last = next(n for n in g.node if n.op_type == "Transpose" and n.output[0] == g.output[0].name)
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
    n, h, w, c = dims(g.input[0])
    new_input = helper.make_tensor_value_info(first.output[0], g.input[0].type.tensor_type.elem_type, [n, c, h, w])
    n, h, w, c = dims(g.output[0])
    new_output = helper.make_tensor_value_info(last.input[0], g.output[0].type.tensor_type.elem_type, [n, c, h, w])
    nodes = [x for x in g.node if x is not first and x is not last]
    graph = helper.make_graph(nodes, g.name, [new_input], [new_output], list(g.initializer))
    onnx.save(helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version), out_path)


def test_nhwc_model_against_an_nchw_copy_is_reconciled(tmp_path):
    conv_out = KERAS_FIXTURES / "conv_out"
    exported, nchw = tmp_path / "nhwc.onnx", tmp_path / "nchw.onnx"
    ferry("convert", conv_out / "keras3.h5", exported, "--no-optimize", check=True)
    nchw_copy(exported, nchw)
    result = ferry("check", conv_out / "keras3.h5", nchw, "--samples", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "NHWC in the reference, NCHW in the candidate" in result.stdout
    assert "matched by position" in result.stdout
