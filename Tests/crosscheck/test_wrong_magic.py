"""Files that are not what their name says (issue 10's "wrong magic"), for every parser: another
format's bytes, an image, text for a binary format and binary for a text format. Each must end in
exit 2 with one `error:` line naming the damaged file, and write nothing. Ferry picks the reader by
extension, so each case is a real file of one format given another's name."""
import subprocess

import pytest

from conftest import FERRY, ROOT

MLP = ROOT / "fixtures/keras/mlp"
LENET = ROOT / "fixtures/caffe/lenet"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00" + bytes(64)
# Protobuf text that parses as text but is not a NetParameter's fields.
NOT_A_NET = b'graph { node { op_type: "Relu" } }\n'


def _onnx_bytes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    subprocess.run([FERRY, "convert", str(MLP / "keras3.h5"), str(folder / "m.onnx")], check=True,
                   capture_output=True, timeout=120)
    return (folder / "m.onnx").read_bytes()


@pytest.fixture(scope="module")
def contents(tmp_path_factory):
    return {
        "hdf5": (MLP / "keras3.h5").read_bytes(),
        "zip": (MLP / "keras3.keras").read_bytes(),
        "caffemodel": (LENET / "net.caffemodel").read_bytes(),
        "prototxt": (LENET / "net.prototxt").read_bytes(),
        "onnx": _onnx_bytes(tmp_path_factory),
        "png": PNG,
        "json": (ROOT / "fixtures/npy/values.json").read_bytes(),
        "not_a_net": NOT_A_NET,
        "empty": b"",
    }


# (the file's name, what goes in it): every parser gets bytes of other formats.
CASES = [
    ("model.prototxt", c) for c in ("hdf5", "zip", "caffemodel", "onnx", "png", "json", "not_a_net", "empty")
] + [
    ("net.caffemodel", c) for c in ("hdf5", "zip", "prototxt", "onnx", "png", "json", "empty")
] + [
    ("model.onnx", c) for c in ("hdf5", "zip", "caffemodel", "prototxt", "png", "json", "empty")
] + [
    ("model.json", c) for c in ("hdf5", "zip", "caffemodel", "prototxt", "onnx", "png", "json", "empty")
] + [
    ("model.keras", c) for c in ("hdf5", "caffemodel", "prototxt", "onnx", "png", "json", "empty")
] + [
    ("model.h5", c) for c in ("zip", "caffemodel", "prototxt", "onnx", "png", "json", "empty")
]


@pytest.mark.parametrize("name,content", CASES, ids=[f"{c}-as-{n.split('.')[1]}" for n, c in CASES])
def test_a_file_of_another_format_is_refused_naming_it(name, content, contents, tmp_path):
    model = tmp_path / name
    model.write_bytes(contents[content])
    args = ["inspect", model]
    if name.endswith(".json"):
        args += ["--weights", MLP / "keras3.h5"]
    if name.endswith(".caffemodel"):
        # A caffemodel is read beside its prototxt: the prototxt is sound, the weights are not.
        (tmp_path / "net.prototxt").write_bytes(contents["prototxt"])
        args = ["inspect", tmp_path / "net.prototxt"]
    before = set(tmp_path.iterdir())
    result = subprocess.run([FERRY, *map(str, args)], capture_output=True, text=True, timeout=120, errors="replace",
                            env={"PATH": "/usr/bin:/bin", "FERRY_PROBE_TIMEOUT": "20"})
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, f"exit {result.returncode}: {result.stderr[-2000:]}"
    assert len(lines) == 1 and lines[0].startswith(f"error: {model}: "), result.stderr[-2000:]
    assert set(tmp_path.iterdir()) == before


@pytest.mark.parametrize("content", ["hdf5", "zip", "onnx", "png", "prototxt"])
def test_an_input_that_is_not_npy_is_refused_naming_it(content, contents, tmp_path):
    x = tmp_path / "x.npy"
    x.write_bytes(contents[content])
    result = subprocess.run([FERRY, "run", str(MLP / "keras3.h5"), "--input", str(x), "--output", str(tmp_path / "y.npy")],
                            capture_output=True, text=True, timeout=120, errors="replace")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {x}: "), result.stderr[-2000:]
    assert not (tmp_path / "y.npy").exists()
