"""Issue 10's list of broken structures, one small file each, through the real CLI: dangling
references, cycles, duplicate names, negative, huge and wrongly typed sizes, tensors whose declared
size is larger than their data, and a pickled `.npy`. Each must end in exit 2 with one `error:`
line naming the file (and the layer or value, where there is one), and write nothing. The files
are made from committed fixtures by h5py and the onnx package; the fuzzer (tools/fuzz.py) makes
the same kinds of damage at random, these pin one of each."""
import json
import pickle
import subprocess

import pytest

from conftest import FERRY, ROOT

TWO_OUTPUTS = ROOT / "fixtures/keras/two_outputs/keras3.h5"


def refused(tmp_path, args, *words):
    """Runs ferry; asserts exit 2, one `error:` line naming the first file and every word, no new file."""
    before = set(tmp_path.iterdir())
    result = subprocess.run([FERRY, *map(str, args)], capture_output=True, text=True, timeout=120, errors="replace")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, f"exit {result.returncode}: {result.stderr[-2000:]}"
    assert len(lines) == 1 and lines[0].startswith(f"error: {args[1]}"), result.stderr[-2000:]
    for word in words:
        assert word in lines[0], lines[0]
    assert set(tmp_path.iterdir()) == before, "a refused file leaves nothing behind"
    return lines[0]


# ---------------------------------------------------------------- Keras (HDF5 model_config)

def _history(layer):
    """The keras_history lists of a Keras 3 layer's inbound tensors."""
    return [arg["config"]["keras_history"] for node in layer["inbound_nodes"] for arg in node["args"]]


KERAS_CASES = {
    # gap reads a layer that does not exist
    "dangling": (lambda L: _history(L["gap"])[0].__setitem__(0, "nowhere"), ["gap"]),
    # conv reads score, which reads gap, which reads conv
    "cycle": (lambda L: _history(L["conv"])[0].__setitem__(0, "score"), []),
    # two layers named gap
    "duplicate_name": (lambda L: (L["flatten"].__setitem__("name", "gap"), L["flatten"]["config"].__setitem__("name", "gap")), ["gap"]),
    "negative_units": (lambda L: L["score"]["config"].__setitem__("units", -3), ["score"]),
    "huge_units": (lambda L: L["probs"]["config"].__setitem__("units", 2**62), ["probs"]),
    "units_of_wrong_type": (lambda L: L["score"]["config"].__setitem__("units", "many"), ["score"]),
    "huge_kernel_size": (lambda L: L["conv"]["config"].__setitem__("kernel_size", [2**31, 2**31]), ["conv"]),
}


@pytest.mark.parametrize("case", KERAS_CASES)
def test_keras_structure(case, tmp_path):
    import h5py
    edit, words = KERAS_CASES[case]
    model = tmp_path / f"{case}.h5"
    model.write_bytes(TWO_OUTPUTS.read_bytes())
    with h5py.File(model, "r+") as h5:
        config = json.loads(h5.attrs["model_config"])
        edit({l["name"]: l for l in config["config"]["layers"]})
        h5.attrs["model_config"] = json.dumps(config)
    refused(tmp_path, ["inspect", model], *words)
    refused(tmp_path, ["convert", model, tmp_path / "out.onnx"], *words)


def test_keras_weight_declared_larger_than_the_file(tmp_path):
    """A weight dataset declared 2^40 floats with no data behind it (an allocation bomb)."""
    import h5py
    model = tmp_path / "bomb.h5"
    model.write_bytes(TWO_OUTPUTS.read_bytes())
    with h5py.File(model, "r+") as h5:
        names = []
        h5.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) and "score" in name and "kernel" in name else None)
        del h5[names[0]]
        h5.create_dataset(names[0], shape=(2**20, 2**20), dtype="f4", chunks=(1, 1))
    assert model.stat().st_size < 1 << 20
    refused(tmp_path, ["inspect", model], "score")


# ---------------------------------------------------------------- ONNX

def _save_onnx(path, nodes, inputs, outputs, initializers=()):
    import onnx
    from onnx import helper
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _onnx_cases():
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    # Built field by field: onnx.helper refuses data that does not match the dims.
    bomb = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 20], raw_data=b"\0" * 4)
    short = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 3], raw_data=b"\0" * 20)
    return {
        "dangling": ([helper.make_node("Relu", ["nothing"], ["y"], name="r")], [x], [y], [], ["nothing"]),
        "cycle": ([helper.make_node("Add", ["x", "c"], ["b"], name="add"), helper.make_node("Relu", ["b"], ["c"], name="relu"),
                   helper.make_node("Identity", ["c"], ["y"], name="id")], [x], [y], [], ["c"]),
        "duplicate_output": ([helper.make_node("Relu", ["x"], ["y"], name="r1"), helper.make_node("Sigmoid", ["x"], ["y"], name="r2")],
                             [x], [y], [], ["y"]),
        "negative_dim": ([helper.make_node("Relu", ["x"], ["y"], name="r")],
                         [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-5, 3])], [y], [], []),
        "initializer_larger_than_its_data": ([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [x], [y], [bomb], ["w"]),
        "initializer_shorter_than_its_dims": ([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [x], [y], [short], ["w"]),
    }


@pytest.mark.parametrize("case", ["dangling", "cycle", "duplicate_output", "negative_dim",
                                  "initializer_larger_than_its_data", "initializer_shorter_than_its_dims"])
def test_onnx_structure(case, tmp_path):
    nodes, inputs, outputs, initializers, words = _onnx_cases()[case]
    model = tmp_path / f"{case}.onnx"
    _save_onnx(model, nodes, inputs, outputs, initializers)
    refused(tmp_path, ["inspect", model], *words)


# ---------------------------------------------------------------- Caffe prototxt

# Layers without weights, so the prototxt alone is a whole model.
CAFFE_NET = """name: "n"
input: "data"
input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer { name: "relu" type: "ReLU" bottom: "%(relu_bottom)s" top: "relu" }
layer { name: "pool" type: "Pooling" bottom: "relu" top: "pool"
  pooling_param { pool: MAX kernel_size: %(kernel)s stride: 2 } }
layer { name: "sig" type: "Sigmoid" bottom: "pool" top: "sig" }
"""
CAFFE_CASES = {
    "dangling_bottom": ({"relu_bottom": "nowhere"}, ["relu", "nowhere"]),
    "cycle": ({"relu_bottom": "sig"}, ["relu", "sig"]),
    "negative_kernel": ({"kernel": "-4"}, ["pool"]),
    "huge_kernel": ({"kernel": str(2**40)}, ["pool"]),
    "kernel_of_wrong_type": ({"kernel": '"four"'}, []),
}


@pytest.mark.parametrize("case", CAFFE_CASES)
def test_caffe_structure(case, tmp_path):
    values, words = CAFFE_CASES[case]
    text = CAFFE_NET % ({"relu_bottom": "data", "kernel": "2"} | values)
    model = tmp_path / f"{case}.prototxt"
    model.write_text(text)
    refused(tmp_path, ["inspect", model], *words)


def test_caffe_weighted_layers_of_one_name(tmp_path):
    """Weights are matched to layers by name: two InnerProduct layers named ip1 would both take
    the caffemodel's ip1 blobs (Caffe gives them to the first and leaves the other at its filler)."""
    lenet = ROOT / "fixtures/caffe/lenet"
    (tmp_path / "net.caffemodel").write_bytes((lenet / "net.caffemodel").read_bytes())
    text = (lenet / "net.prototxt").read_text()
    assert text.count('name: "ip2"') == 1
    model = tmp_path / "net.prototxt"
    model.write_text(text.replace('name: "ip2"', 'name: "ip1"'))
    refused(tmp_path, ["inspect", model], "ip1", "named")


# ---------------------------------------------------------------- .npy

class _RunsCode:
    """Unpickling this would create the marker file: Ferry must never unpickle."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_npy_is_refused_without_running_it(tmp_path):
    import numpy as np
    marker = tmp_path / "unpickled"
    x = tmp_path / "objects.npy"
    array = np.empty((1, 16), dtype=object)
    array[0, 0] = _RunsCode(marker)
    np.save(x, array, allow_pickle=True)
    assert b"'descr': '|O'" in x.read_bytes()[:128] and str(marker).encode() in x.read_bytes()
    model = ROOT / "fixtures/keras/mlp/keras3.h5"
    result = subprocess.run([FERRY, "run", str(model), "--input", str(x), "--output", str(tmp_path / "y.npy")],
                            capture_output=True, text=True, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert str(x) in lines[0] and "dtype '|O' is not supported" in lines[0], lines[0]
    assert not marker.exists() and not (tmp_path / "y.npy").exists()


def test_npy_shape_larger_than_its_data_is_refused(tmp_path):
    """A header declaring 2^40 x 16 floats in front of 64 bytes of data."""
    import numpy as np
    x = tmp_path / "huge.npy"
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 16), }"
    header = header.ljust(118) + b"\n"  # magic, version and length make 128 bytes, as numpy pads
    x.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + np.zeros(16, np.float32).tobytes())
    model = ROOT / "fixtures/keras/mlp/keras3.h5"
    result = subprocess.run([FERRY, "run", str(model), "--input", str(x), "--output", str(tmp_path / "y.npy")],
                            capture_output=True, text=True, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert str(x) in lines[0], lines[0]
    assert not (tmp_path / "y.npy").exists()
