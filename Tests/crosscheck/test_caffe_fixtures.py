"""Every Caffe fixture (tools/make_caffe_fixtures.py): `ferry run` on net.prototxt + net.caffemodel
agrees with OpenCV's Caffe importer (on the net or on the equivalent reference net the manifest
names), `ferry convert` to ONNX passes the full ONNX checker and agrees in onnxruntime, V1, V2
and mixed forms of one net give identical outputs, and the error fixtures fail with exit 2 and
one `error:` line naming the file, the layer and what is wrong."""
import json
import pathlib
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import ROOT, ferry, output_file_name, within_tolerance

CAFFE_FIXTURES = ROOT / "fixtures" / "caffe"


def caffe_cases(expect):
    cases = []
    for manifest_path in sorted(CAFFE_FIXTURES.glob("*/manifest.json")):
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("expect", "ok") == expect:
            cases.append(pytest.param(manifest_path.parent, manifest, id=manifest["name"]))
    return cases


def run_outputs(model, model_dir, manifest, out_dir, *extra):
    args = ["run", model, *extra]
    for inp in manifest["inputs"]:
        args += ["--input", f"{inp['name']}={model_dir / inp['npy']}"]
    ferry(*args, "--output-dir", out_dir, check=True)
    return {o["name"]: np.load(out_dir / output_file_name(o["name"])) for o in manifest["outputs"]}


@pytest.mark.parametrize("model_dir,manifest", caffe_cases("ok"))
def test_run_matches_opencv(model_dir, manifest, tmp_path):
    results = run_outputs(model_dir / "net.prototxt", model_dir, manifest, tmp_path)
    for out in manifest["outputs"]:
        within_tolerance(results[out["name"]], np.load(model_dir / out["npy"]))


@pytest.mark.parametrize("model_dir,manifest", caffe_cases("ok"))
def test_onnx_export_checks_and_matches_in_onnxruntime(model_dir, manifest, tmp_path):
    onnx_path = tmp_path / "model.onnx"
    if manifest.get("onnx_error"):
        # A layer ONNX cannot express (DetectionOutput): exit 2 naming it, no file written.
        result = ferry("convert", model_dir / "net.prototxt", onnx_path)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and manifest["onnx_error"] in lines[0], result.stderr
        assert not onnx_path.exists()
        return
    ferry("convert", model_dir / "net.prototxt", onnx_path, check=True)
    model = onnx.load(onnx_path)
    onnx.checker.check_model(model, full_check=True)
    assert [i["name"] for i in manifest["inputs"]] == [i.name for i in model.graph.input]
    assert [o["name"] for o in manifest["outputs"]] == [o.name for o in model.graph.output]
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feeds = {}
    for graph_input, inp in zip(model.graph.input, manifest["inputs"]):
        array = np.load(model_dir / inp["npy"])
        dims = graph_input.type.tensor_type.shape.dim
        assert dims[0].dim_param, "batch dimension should stay symbolic"
        assert [d.dim_value for d in dims[1:]] == list(array.shape[1:])
        feeds[inp["name"]] = array
    results = session.run([o["name"] for o in manifest["outputs"]], feeds)
    for out, result in zip(manifest["outputs"], results):
        within_tolerance(result, np.load(model_dir / out["npy"]))


@pytest.mark.parametrize("model_dir,manifest", [c for c in caffe_cases("ok") if "same_as" in c.values[1]])
def test_v1_v2_and_mixed_forms_give_identical_outputs(model_dir, manifest, tmp_path):
    base_dir = CAFFE_FIXTURES / manifest["same_as"]
    base = json.loads((base_dir / "manifest.json").read_text())
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    ours = run_outputs(model_dir / "net.prototxt", model_dir, manifest, tmp_path / "a")
    theirs = run_outputs(base_dir / "net.prototxt", base_dir, base, tmp_path / "b")
    assert list(ours) == list(theirs)
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name])


@pytest.mark.parametrize("model_dir,manifest", [c for c in caffe_cases("ok") if c.values[1].get("caffemodel_alone")])
def test_caffemodel_alone_matches_too(model_dir, manifest, tmp_path):
    """Fixtures whose caffemodel is written in a fork's numbering (DeepLab's interp_param at
    field 143) must give the same results from the caffemodel alone, its own layer definitions."""
    results = run_outputs(model_dir / "net.caffemodel", model_dir, manifest, tmp_path)
    for out in manifest["outputs"]:
        within_tolerance(results[out["name"]], np.load(model_dir / out["npy"]))


def test_caffemodel_alone_and_weights_option(tmp_path):
    model_dir = CAFFE_FIXTURES / "resnet_bottleneck"
    manifest = json.loads((model_dir / "manifest.json").read_text())
    expected = np.load(model_dir / manifest["outputs"][0]["npy"])
    (tmp_path / "alone").mkdir()
    alone = run_outputs(model_dir / "net.caffemodel", model_dir, manifest, tmp_path / "alone")
    within_tolerance(alone[manifest["outputs"][0]["name"]], expected)
    # A prototxt with no caffemodel beside it takes --weights.
    shutil.copy(model_dir / "net.prototxt", tmp_path / "deploy.prototxt")
    (tmp_path / "flag").mkdir()
    flagged = run_outputs(tmp_path / "deploy.prototxt", model_dir, manifest, tmp_path / "flag",
                          "--weights", model_dir / "net.caffemodel")
    within_tolerance(flagged[manifest["outputs"][0]["name"]], expected)
    # Without either, the first layer with weights is named.
    result = ferry("inspect", tmp_path / "deploy.prototxt")
    assert result.returncode == 2 and "res_a (Convolution)" in result.stderr and "--weights" in result.stderr


@pytest.mark.parametrize("model_dir,manifest", caffe_cases("ok"))
def test_inspect_reports_the_interface(model_dir, manifest):
    summary = json.loads(ferry("inspect", model_dir / "net.prototxt", "--json", check=True).stdout)
    assert summary["format"] == "caffe"
    assert [i["name"] for i in summary["inputs"]] == [i["name"] for i in manifest["inputs"]]
    assert [o["name"] for o in summary["outputs"]] == [o["name"] for o in manifest["outputs"]]
    for port, inp in zip(summary["inputs"], manifest["inputs"]):
        assert port["shape"][0] == "N"
        assert port["shape"][1:] == [str(d) for d in np.load(model_dir / inp["npy"]).shape[1:]]
    warnings = summary["metadata"].get("warnings", "")
    for layer in manifest.get("warns", []):
        assert layer in warnings, warnings
    if not manifest.get("warns"):
        assert not warnings


@pytest.mark.parametrize("model_dir,manifest", caffe_cases("error"))
def test_errors_exit_2_naming_the_layer(model_dir, manifest, tmp_path):
    model = model_dir / "net.prototxt"
    out = tmp_path / "model.onnx"
    result = ferry("convert", model, out)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert str(model) in lines[0], lines[0]
    assert manifest["error_layer"] in lines[0] and manifest["error_text"] in lines[0], lines[0]
    assert not out.exists(), "no partial output file"
