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


def refused(tmp_path, args, *words, file=None):
    """Runs ferry; asserts exit 2, one `error:` line naming `file` (else the first file) and every
    word, no new file."""
    before = set(tmp_path.iterdir())
    result = subprocess.run([FERRY, *map(str, args)], capture_output=True, text=True, timeout=120, errors="replace")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, f"exit {result.returncode}: {result.stderr[-2000:]}"
    assert len(lines) == 1 and lines[0].startswith(f"error: {file or args[1]}: "), result.stderr[-2000:]
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


KERAS_CASES |= {
    # 2^31-1 cubed elements: the product overflows a 64-bit count
    "input_product_overflows": (lambda L: L["patch"]["config"].__setitem__("batch_shape", [None, 2**31 - 1, 2**31 - 1, 2]), []),
    "negative_input_dim": (lambda L: L["patch"]["config"].__setitem__("batch_shape", [None, -8, 8, 2]), []),
    "strides_of_wrong_type": (lambda L: L["conv"]["config"].__setitem__("strides", {"x": 1}), ["conv"]),
}


def _edited_config(text, edit):
    config = json.loads(text)
    edit({l["name"]: l for l in config["config"]["layers"]})
    return json.dumps(config)


def _keras_file(container, edit, tmp_path):
    """The two_outputs model with `edit` applied to its config, as a legacy `.h5`, a `.keras`
    zip, or an architecture JSON beside the `.h5` as its weights; (arguments of inspect)."""
    import h5py
    if container == "h5":
        model = tmp_path / "model.h5"
        model.write_bytes(TWO_OUTPUTS.read_bytes())
        with h5py.File(model, "r+") as h5:
            h5.attrs["model_config"] = _edited_config(h5.attrs["model_config"], edit)
        return [model]
    if container == "keras":
        import zipfile
        model = tmp_path / "model.keras"
        with zipfile.ZipFile(TWO_OUTPUTS.with_suffix(".keras")) as source, zipfile.ZipFile(model, "w") as z:
            for name in source.namelist():
                data = source.read(name)
                z.writestr(name, _edited_config(data, edit) if name == "config.json" else data)
        return [model]
    model = tmp_path / "model.json"
    with h5py.File(TWO_OUTPUTS, "r") as h5:
        model.write_text(_edited_config(h5.attrs["model_config"], edit))
    weights = tmp_path / "weights.h5"
    weights.write_bytes(TWO_OUTPUTS.read_bytes())
    return [model, "--weights", weights]


def test_keras_containers_read_the_unedited_model(tmp_path):
    """The three containers the cases below are made in are sound before the edit."""
    for container in ("h5", "keras", "json"):
        args = _keras_file(container, lambda L: None, tmp_path)
        result = subprocess.run([FERRY, "inspect", *map(str, args)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and "probs" in result.stdout, (container, result.stderr[-2000:])
        for f in tmp_path.iterdir():
            f.unlink()


@pytest.mark.parametrize("container", ["h5", "keras", "json"])
@pytest.mark.parametrize("case", KERAS_CASES)
def test_keras_structure(case, container, tmp_path):
    edit, words = KERAS_CASES[case]
    args = _keras_file(container, edit, tmp_path)
    refused(tmp_path, ["inspect", *args], *words)
    if container == "h5":
        refused(tmp_path, ["convert", args[0], tmp_path / "out.onnx"], *words)


@pytest.mark.parametrize("container", ["h5", "keras", "json"])
def test_keras_truncated(container, tmp_path):
    """The model file cut short (at a quarter, a half and near its end: inside HDF5's objects,
    a zip's members or central directory, the JSON's layers)."""
    args = _keras_file(container, lambda L: None, tmp_path)
    data = args[0].read_bytes()
    for cut in (len(data) // 4, len(data) // 2, len(data) - 30):
        args[0].write_bytes(data[:cut])
        refused(tmp_path, ["inspect", *args])


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
    overflow = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 32, 1 << 32, 1 << 32], raw_data=b"\0" * 4)
    huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 40, 3], raw_data=b"\0" * 24)
    negative = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[-2, 3], raw_data=b"\0" * 24)
    # A weight of strings (ONNX's type 8) where Add needs numbers, and a type number ONNX lacks.
    strings = TensorProto(name="w", data_type=TensorProto.STRING, dims=[2, 3], string_data=[b"a"] * 6)
    unknown = TensorProto(name="w", data_type=99, dims=[2, 3], raw_data=b"\0" * 24)
    add = [helper.make_node("Add", ["x", "w"], ["y"], name="add")]
    ones = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 3], raw_data=b"\0\0\x80\x3f" * 6)
    zeros = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 3], raw_data=b"\0" * 24)
    return {
        # two weights named w: one would silently win
        "duplicate_initializer": (add, [x], [y], [ones, zeros], ["'w'"]),
        "duplicate_input": ([helper.make_node("Relu", ["x"], ["y"], name="r")], [x, x], [y], [], ["'x'"]),
        "initializer_dims_product_overflows": (add, [x], [y], [overflow], ["w"]),
        "initializer_huge_dim": (add, [x], [y], [huge], ["w"]),
        "initializer_negative_dim": (add, [x], [y], [negative], ["w"]),
        # Strings are an IR element type (Cast reads them), but Add takes none: the node is named.
        "initializer_of_strings": (add, [x], [y], [strings], ["add", "string"]),
        "initializer_of_unknown_type": (add, [x], [y], [unknown], ["w"]),
        "input_dims_product_overflows": ([helper.make_node("Relu", ["x"], ["y"], name="r")],
                                         [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2**31 - 1] * 3)], [y], [], []),
        # perm given as a string, kernel_shape as floats: attributes of the wrong type
        "attribute_of_wrong_type": ([helper.make_node("Transpose", ["x"], ["y"], name="t", perm="1,0")], [x],
                                    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 2])], [], ["t"]),
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


ONNX_CASES = ["dangling", "cycle", "duplicate_output", "duplicate_initializer", "duplicate_input",
              "negative_dim", "initializer_larger_than_its_data",
              "initializer_shorter_than_its_dims", "initializer_dims_product_overflows", "initializer_huge_dim",
              "initializer_negative_dim", "initializer_of_strings", "initializer_of_unknown_type",
              "input_dims_product_overflows", "attribute_of_wrong_type"]


@pytest.mark.parametrize("case", ONNX_CASES)
def test_onnx_structure(case, tmp_path):
    nodes, inputs, outputs, initializers, words = _onnx_cases()[case]
    model = tmp_path / f"{case}.onnx"
    _save_onnx(model, nodes, inputs, outputs, initializers)
    refused(tmp_path, ["inspect", model], *words)


def test_onnx_truncated(tmp_path):
    """A sound model cut short at several points, the last inside its initializer's data."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "w")
    full = tmp_path / "full.onnx"
    _save_onnx(full, [helper.make_node("Add", ["x", "w"], ["y"], name="add")],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])], [w])
    data = full.read_bytes()
    assert subprocess.run([FERRY, "inspect", str(full)], capture_output=True, timeout=60).returncode == 0
    full.unlink()
    for cut in (len(data) // 4, len(data) // 2, len(data) - 20):
        model = tmp_path / f"cut{cut}.onnx"
        model.write_bytes(data[:cut])
        refused(tmp_path, ["inspect", model])


# ---------------------------------------------------------------- Caffe prototxt

# Layers without weights, so the prototxt alone is a whole model.
CAFFE_NET = """name: "n"
input: "data"
input_shape { %(dims)s }
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
    # 2^31-1 to the fourth elements: the product overflows a 64-bit count
    "input_product_overflows": ({"dims": "dim: 2147483647 dim: 2147483647 dim: 2147483647 dim: 2147483647"}, []),
    "negative_input_dim": ({"dims": "dim: 1 dim: -3 dim: 8 dim: 8"}, []),
    "huge_input_dim": ({"dims": "dim: 1 dim: 3 dim: 1099511627776 dim: 8"}, []),
}


@pytest.mark.parametrize("case", CAFFE_CASES)
def test_caffe_structure(case, tmp_path):
    values, words = CAFFE_CASES[case]
    text = CAFFE_NET % ({"relu_bottom": "data", "kernel": "2", "dims": "dim: 1 dim: 3 dim: 8 dim: 8"} | values)
    model = tmp_path / f"{case}.prototxt"
    model.write_text(text)
    refused(tmp_path, ["inspect", model], *words)


def test_caffe_prototxt_truncated(tmp_path):
    """The sound net of the cases above, cut inside a layer's braces and inside a string."""
    text = CAFFE_NET % {"relu_bottom": "data", "kernel": "2", "dims": "dim: 1 dim: 3 dim: 8 dim: 8"}
    (tmp_path / "full.prototxt").write_text(text)
    assert subprocess.run([FERRY, "inspect", str(tmp_path / "full.prototxt")], capture_output=True, timeout=60).returncode == 0
    (tmp_path / "full.prototxt").unlink()
    for cut in (text.index("pooling_param") + 20, text.index('"sig"') + 3):
        model = tmp_path / f"cut{cut}.prototxt"
        model.write_text(text[:cut])
        refused(tmp_path, ["inspect", model])


# ---------------------------------------------------------------- Caffe caffemodel

# An InnerProduct net whose weights the caffemodel below holds.
CAFFE_IP_NET = """name: "n"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 2 } }
"""


def _pb_varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        out.append((v & 0x7F) | (0x80 if v > 0x7F else 0))
        v >>= 7
        if not v:
            return bytes(out)


def _pb_bytes(field, payload):
    return _pb_varint(field << 3 | 2) + _pb_varint(len(payload)) + payload


def _caffe_blob(dims, values, data_field=None):
    """A BlobProto (schemas/caffe.proto): shape (7) of packed int64 dims (1), packed float data (5);
    `data_field` replaces the data field's bytes (to give it another wire type)."""
    import struct
    shape = _pb_bytes(7, _pb_bytes(1, b"".join(_pb_varint(d) for d in dims)))
    data = data_field if data_field is not None else _pb_bytes(5, struct.pack(f"<{len(values)}f", *values))
    return shape + data


def _caffemodel(blobs):
    """A NetParameter with one layer (100) named ip (1), of type InnerProduct (2), holding `blobs` (7)."""
    layer = _pb_bytes(1, b"ip") + _pb_bytes(2, b"InnerProduct") + b"".join(_pb_bytes(7, b) for b in blobs)
    return _pb_bytes(1, b"n") + _pb_bytes(100, layer)


SOUND_IP = [_caffe_blob([2, 3], [0.5] * 6), _caffe_blob([2], [1.0, 2.0])]
# (blobs, words, the file the error line starts with): a blob that does not fill its own shape
# is the caffemodel's fault; a shape that disagrees with the prototxt's layer names the prototxt
# and, in the message, the caffemodel.
CAFFEMODEL_CASES = {
    "data_shorter_than_its_shape": ([_caffe_blob([2, 3], [0.5] * 5), SOUND_IP[1]], ["ip", "holds 5 values"], "net.caffemodel"),
    "data_longer_than_its_shape": ([_caffe_blob([2, 3], [0.5] * 7), SOUND_IP[1]], ["ip", "holds 7 values"], "net.caffemodel"),
    # 2^40 floats declared, 6 stored: an allocation bomb if the shape were trusted
    "declared_larger_than_the_file": ([_caffe_blob([1 << 20, 1 << 20], [0.5] * 6), SOUND_IP[1]], ["ip", "net.caffemodel"], "net.prototxt"),
    "negative_dim": ([_caffe_blob([-2, 3], [0.5] * 6), SOUND_IP[1]], ["ip", "net.caffemodel"], "net.prototxt"),
    "dims_product_overflows": ([_caffe_blob([1 << 32, 1 << 32, 1 << 32], [0.5] * 6), SOUND_IP[1]], ["ip", "net.caffemodel"], "net.prototxt"),
    # the data field (5) as a varint: a value of the wrong wire type
    "data_of_wrong_type": ([_caffe_blob([2, 3], [], data_field=_pb_varint(5 << 3) + _pb_varint(7)), SOUND_IP[1]], ["ip"], "net.caffemodel"),
    "truncated": (None, ["truncated"], "net.caffemodel"),
}


def _caffe_pair(tmp_path, blobs):
    (tmp_path / "net.prototxt").write_text(CAFFE_IP_NET)
    data = _caffemodel(SOUND_IP) if blobs is None else _caffemodel(blobs)
    (tmp_path / "net.caffemodel").write_bytes(data[:len(data) - 10] if blobs is None else data)
    return tmp_path / "net.prototxt"


def test_caffemodel_of_the_cases_reads_when_sound(tmp_path):
    """The encoding the cases below damage is a caffemodel Ferry reads, weights and all."""
    model = _caffe_pair(tmp_path, SOUND_IP)
    x = tmp_path / "x.npy"
    import numpy as np
    np.save(x, np.ones((1, 3), dtype=np.float32))
    result = subprocess.run([FERRY, "run", str(model), "--input", str(x), "--output", str(tmp_path / "y.npy")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "y.npy").tolist() == [[2.5, 3.5]]


@pytest.mark.parametrize("case", CAFFEMODEL_CASES)
def test_caffemodel_structure(case, tmp_path):
    blobs, words, named = CAFFEMODEL_CASES[case]
    model = _caffe_pair(tmp_path, blobs)
    refused(tmp_path, ["inspect", model], *words, file=tmp_path / named)


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


def _npy(header, payload):
    header = header.ljust(118) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + payload


NPY_CASES = {
    "negative_dim": _npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 16), }", bytes(64)),
    "shape_product_overflows": _npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }", bytes(64)),
    "data_shorter_than_its_shape": _npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 16), }", bytes(64)),
    "shape_of_wrong_type": _npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': 'sixteen', }", bytes(64)),
    "descr_of_wrong_type": _npy(b"{'descr': 4, 'fortran_order': False, 'shape': (1, 16), }", bytes(64)),
    "truncated_header": _npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 16), }", bytes(64))[:40],
}


@pytest.mark.parametrize("case", NPY_CASES)
def test_npy_structure(case, tmp_path):
    x = tmp_path / f"{case}.npy"
    x.write_bytes(NPY_CASES[case])
    model = ROOT / "fixtures/keras/mlp/keras3.h5"
    result = subprocess.run([FERRY, "run", str(model), "--input", str(x), "--output", str(tmp_path / "y.npy")],
                            capture_output=True, text=True, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {x}: "), result.stderr[-2000:]
    assert not (tmp_path / "y.npy").exists()


def test_npy_sound_form_of_the_cases_runs(tmp_path):
    """The header the cases above damage is one Ferry reads."""
    x = tmp_path / "x.npy"
    x.write_bytes(_npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 16), }", bytes(64)))
    result = subprocess.run([FERRY, "run", str(ROOT / "fixtures/keras/mlp/keras3.h5"), "--input", str(x),
                             "--output", str(tmp_path / "y.npy")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- .npz (`check --input`)

GAP = ROOT / "fixtures/keras/cnn_gap"


def _npz_of_zeros(path, shape):
    """An .npz whose image.npy is a sound header and `shape` float32 zeros, deflated (numpy's
    savez_compressed writes the same), streamed so the zeros are never all in memory."""
    import zipfile
    import numpy as np
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1,), np.float32)) | {"shape": shape}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z, z.open("image.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, header)
        block = bytes(1 << 20)
        size = 4 * int(np.prod(shape))
        for _ in range(size >> 20):
            f.write(block)
        f.write(bytes(size % (1 << 20)))


def test_npz_bomb_is_refused_before_it_is_read(tmp_path):
    """300 MiB of zeros in 300 KB (numpy.savez_compressed of zeros gives this ratio): refused for
    its expansion from the headers, before 300 MiB are read into memory."""
    import zipfile
    bomb = tmp_path / "bomb.npz"
    _npz_of_zeros(bomb, (2, 8, 8 * 1200, 1024))
    assert bomb.stat().st_size < 1 << 20 and zipfile.ZipFile(bomb).getinfo("image.npy").file_size > 300 << 20
    result = subprocess.run([FERRY, "check", str(GAP / "keras3.h5"), str(GAP / "keras2.h5"), "--input", str(bomb)],
                            capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {bomb}: "), result.stderr[-2000:]
    assert "expand" in lines[0] and "FERRY_ZIP_MAX_RATIO" in lines[0], lines[0]


def test_npz_member_holding_more_than_it_declares_is_refused(tmp_path):
    import struct
    import numpy as np
    x = tmp_path / "lie.npz"
    np.savez(x, image=np.load(GAP / "input_0.npy"))
    data = bytearray(x.read_bytes())
    real = struct.unpack_from("<I", data, 22)[0]
    for offset in (22, data.find(b"PK\x01\x02") + 24):  # the local and the central header's size
        struct.pack_into("<I", data, offset, 100)
    x.write_bytes(bytes(data))
    assert real > 100
    result = subprocess.run([FERRY, "check", str(GAP / "keras3.h5"), str(GAP / "keras2.h5"), "--input", str(x)],
                            capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {x}: "), result.stderr[-2000:]
