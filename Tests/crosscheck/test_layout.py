"""`--layout nchw`: a Keras model's image inputs and outputs become channels first and the
converted graph keeps no Transpose; the results are Keras's, transposed."""
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import KERAS_FIXTURES, ferry, within_tolerance


def to_nchw(a):
    return np.ascontiguousarray(np.moveaxis(a, -1, 1)) if a.ndim >= 3 else a


@pytest.mark.parametrize("name", ["conv_out", "concat_family", "cnn_flatten"])
def test_nchw_interface_has_no_transpose_and_matches_keras(name, tmp_path):
    folder = KERAS_FIXTURES / name
    manifest = json.loads((folder / "manifest.json").read_text())
    variant = next(v for v in manifest["variants"] if v["file"] == "keras3.h5")
    onnx_path = tmp_path / "m.onnx"
    ferry("convert", folder / "keras3.h5", onnx_path, "--layout", "nchw", check=True)
    model = onnx.load(onnx_path)
    assert not [n for n in model.graph.node if n.op_type == "Transpose"]
    feeds = {i["name"]: to_nchw(np.load(folder / i["npy"])) for i in variant["inputs"]}
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    results = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    for out in variant["outputs"]:
        within_tolerance(results[out["name"]], to_nchw(np.load(folder / out["npy"])))
    # ferry run takes and gives the same layout.
    args = []
    for i in variant["inputs"]:
        np.save(tmp_path / f"{i['npy']}", feeds[i["name"]])
        args += ["--input", f"{i['name']}={tmp_path / i['npy']}"]
    ferry("run", folder / "keras3.h5", "--layout", "nchw", *args, "--output-dir", tmp_path / "out", check=True)
    for out in variant["outputs"]:
        within_tolerance(np.load(tmp_path / "out" / f"{out['name']}.npy"), to_nchw(np.load(folder / out["npy"])))


def test_convert_help_states_the_layout_option():
    text = ferry("convert", "--help", check=True).stdout
    assert "--layout" in text and "nchw" in text and "no Transpose" in text
