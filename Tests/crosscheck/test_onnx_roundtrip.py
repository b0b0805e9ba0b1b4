"""ONNX both ways through the real `ferry` binary: every Keras and every Caffe fixture converted
to ONNX is read back by Ferry's ONNX importer; `ferry run` on the .onnx agrees with the
framework's reference, and `ferry convert x.onnx y.onnx` writes a model that passes the full
checker and gives the same outputs again (source -> IR -> ONNX -> IR -> ONNX -> IR)."""
import numpy as np
import onnx
import pytest

from conftest import ferry, keras_cases, model_args, output_file_name, within_tolerance
from test_caffe_fixtures import caffe_cases


def run_outputs(model, model_dir, variant, out_dir):
    args = ["run", model]
    for inp in variant["inputs"]:
        args += ["--input", f"{inp['name']}={model_dir / inp['npy']}"]
    ferry(*args, "--output-dir", out_dir, check=True)
    return [np.load(out_dir / output_file_name(o["name"])) for o in variant["outputs"]]


@pytest.mark.parametrize("model_dir,variant,manifest", keras_cases("ok"))
def test_onnx_reads_back_and_converts_again(model_dir, variant, manifest, tmp_path):
    first = tmp_path / "first.onnx"
    second = tmp_path / "second.onnx"
    ferry("convert", *model_args(model_dir, variant), first, check=True)
    ferry("convert", first, second, check=True)
    onnx.checker.check_model(onnx.load(second), full_check=True)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    from_first = run_outputs(first, model_dir, variant, tmp_path / "a")
    from_second = run_outputs(second, model_dir, variant, tmp_path / "b")
    for out, a, b in zip(variant["outputs"], from_first, from_second):
        within_tolerance(a, np.load(model_dir / out["npy"]))
        np.testing.assert_array_equal(a, b)
    summary = ferry("inspect", second, check=True).stdout
    assert "format:     onnx" in summary and "original_format: keras" in summary


# Caffe fixtures whose layers ONNX cannot say: converting them must fail naming the layer.
ONNX_UNEXPRESSIBLE = {"ssd_detection": "detection_out (DetectionOutput)",
                      "ssd_detection_options": "keep_all (DetectionOutput)",
                      "upsample_unpool": "pool1 (Pooling)"}


@pytest.mark.parametrize("model_dir,manifest", caffe_cases("ok"))
def test_caffe_onnx_reads_back_and_converts_again(model_dir, manifest, tmp_path):
    first = tmp_path / "first.onnx"
    second = tmp_path / "second.onnx"
    if model_dir.name in ONNX_UNEXPRESSIBLE:
        result = ferry("convert", model_dir / "net.prototxt", first)
        assert result.returncode == 2 and ONNX_UNEXPRESSIBLE[model_dir.name] in result.stderr
        assert not first.exists()
        return
    ferry("convert", model_dir / "net.prototxt", first, check=True)
    ferry("convert", first, second, check=True)
    onnx.checker.check_model(onnx.load(second), full_check=True)
    outputs = []
    for model, out_dir in [(first, tmp_path / "a"), (second, tmp_path / "b")]:
        out_dir.mkdir()
        args = ["run", model]
        for inp in manifest["inputs"]:
            args += ["--input", f"{inp['name']}={model_dir / inp['npy']}"]
        ferry(*args, "--output-dir", out_dir, check=True)
        outputs.append([np.load(out_dir / output_file_name(o["name"])) for o in manifest["outputs"]])
    for out, a, b in zip(manifest["outputs"], *outputs):
        within_tolerance(a, np.load(model_dir / out["npy"]))
        np.testing.assert_array_equal(a, b)
    summary = ferry("inspect", second, check=True).stdout
    assert "format:     onnx" in summary and "original_format: caffe" in summary


def test_unsupported_onnx_op_names_op_domain_and_opset(tmp_path):
    from onnx import TensorProto, helper
    node = helper.make_node("Acos", ["x"], ["y"], name="acos1")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    path = tmp_path / "acos.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]), path)
    result = ferry("inspect", path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {path}: acos1 (Acos): ")
    assert "Acos (domain ai.onnx, opset 15)" in result.stderr


@pytest.mark.parametrize("opset", range(13, 22))
def test_convert_at_other_opsets(opset, tmp_path):
    model_dir, variant, _ = keras_cases("ok")[0].values
    path = tmp_path / f"m{opset}.onnx"
    ferry("convert", model_dir / variant["file"], path, "--opset", opset, check=True)
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [opset]
    out = tmp_path / "out"
    out.mkdir()
    for o, result in zip(variant["outputs"], run_outputs(path, model_dir, variant, out)):
        within_tolerance(result, np.load(model_dir / o["npy"]))


def test_opset_out_of_range_is_a_usage_error(tmp_path):
    model_dir, variant, _ = keras_cases("ok")[0].values
    result = ferry("convert", model_dir / variant["file"], tmp_path / "m.onnx", "--opset", 9)
    assert result.returncode == 2 and "13 to 21" in result.stderr
    assert not (tmp_path / "m.onnx").exists()
