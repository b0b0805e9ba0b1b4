"""Every Keras fixture, Keras 2 and Keras 3 files: `ferry run` agrees with Keras's own predict(),
`ferry convert` to ONNX passes the full ONNX checker and agrees in onnxruntime, and the error
fixtures fail with exit 2 and an `error:` line naming the file and the layer."""
import json
import pathlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import agrees_with_keras, ferry, keras_cases, model_args, output_file_name

# The format `ferry inspect` reports for each kind of fixture file.
FORMATS = {".h5": "keras-h5", ".keras": "keras", ".json": "keras-json"}


@pytest.mark.parametrize("model_dir,variant,manifest", keras_cases("ok"))
def test_run_matches_keras(model_dir, variant, manifest, tmp_path):
    args = ["run", *model_args(model_dir, variant)]
    for inp in variant["inputs"]:
        args += ["--input", f"{inp['name']}={model_dir / inp['npy']}"]
    ferry(*args, "--output-dir", tmp_path, check=True)
    for out in variant["outputs"]:
        result = np.load(tmp_path / output_file_name(out["name"]))
        agrees_with_keras(result, model_dir, out)


@pytest.mark.parametrize("model_dir,variant,manifest", keras_cases("ok"))
def test_onnx_export_checks_and_matches_in_onnxruntime(model_dir, variant, manifest, tmp_path):
    onnx_path = tmp_path / "model.onnx"
    ferry("convert", *model_args(model_dir, variant), onnx_path, check=True)
    model = onnx.load(onnx_path)
    onnx.checker.check_model(model, full_check=True)
    # The source model's interface: names, NHWC layout, open batch dimension.
    graph_inputs = {i.name: i for i in model.graph.input}
    assert [i["name"] for i in variant["inputs"]] == [i.name for i in model.graph.input]
    assert [o["name"] for o in variant["outputs"]] == [o.name for o in model.graph.output]
    # onnxruntime's own graph fusions add rounding of their own (ResNet50V2: 5e-4 against Keras
    # with them, 1e-6 without): check the file's semantics, not onnxruntime's optimizer.
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    feeds = {}
    for inp in variant["inputs"]:
        array = np.load(model_dir / inp["npy"])
        dims = graph_inputs[inp["name"]].type.tensor_type.shape.dim
        if manifest.get("fixed_batch"):
            # The Keras model fixes its batch (stateful layers need one): the file keeps it.
            assert dims[0].dim_value == manifest["fixed_batch"], "the model's fixed batch size should be kept"
        else:
            assert dims[0].dim_param, "batch dimension should stay symbolic"
        assert [d.dim_value for d in dims[1:]] == list(array.shape[1:])
        feeds[inp["name"]] = array
    results = session.run([o["name"] for o in variant["outputs"]], feeds)
    for out, result in zip(variant["outputs"], results):
        agrees_with_keras(result, model_dir, out)


@pytest.mark.parametrize("model_dir,variant,manifest", keras_cases("ok"))
def test_inspect_reports_the_interface(model_dir, variant, manifest):
    result = ferry("inspect", *model_args(model_dir, variant), "--json", check=True)
    summary = json.loads(result.stdout)
    assert summary["format"] == FORMATS[pathlib.Path(variant["file"]).suffix]
    assert [i["name"] for i in summary["inputs"]] == [i["name"] for i in variant["inputs"]]
    assert [o["name"] for o in summary["outputs"]] == [o["name"] for o in variant["outputs"]]
    first_input = np.load(model_dir / variant["inputs"][0]["npy"])
    assert summary["inputs"][0]["shape"][1:] == [str(d) for d in first_input.shape[1:]]
    assert summary["parameters"] > 0 and summary["flops"] > 0


@pytest.mark.parametrize("model_dir,variant,manifest", keras_cases("error"))
def test_unsupported_layers_exit_2_naming_the_layer(model_dir, variant, manifest, tmp_path):
    model = model_dir / variant["file"]
    out = tmp_path / "model.onnx"
    result = ferry("convert", *model_args(model_dir, variant), out)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert str(model) in lines[0] and manifest["error_layer"] in lines[0], lines[0]
    assert not out.exists(), "no partial output file"
