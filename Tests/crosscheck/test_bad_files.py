"""A fast, deterministic corpus of damaged model files: every one must end in exit 0 or in exit 2
with one `error:` line, never a crash, a hang or a traceback. tools/fuzz.py runs the same
mutations at scale; cases it found that once crashed or hung are kept in fixtures/bad/."""
import json
import pathlib
import random
import subprocess

import pytest

from conftest import FERRY, ROOT

SEEDS = {
    "h5": sorted((ROOT / "fixtures/keras").glob("*/keras*.h5"))[:6],
    "caffemodel": sorted((ROOT / "fixtures/caffe").glob("*/*.caffemodel"))[:4],
    "prototxt": sorted((ROOT / "fixtures/caffe").glob("*/*.prototxt"))[:4],
    "npy": sorted((ROOT / "fixtures/npy").glob("*.npy"))[:6],
    "keras": sorted((ROOT / "fixtures/keras").glob("*/keras3.keras"))[:4],
    # Architecture JSON beside its weights file; the JSON is damaged.
    "json": sorted((ROOT / "fixtures/keras").glob("*/keras*.json"))[:4],
    # No ONNX file is committed: these are converted by ferry first, then damaged.
    "onnx": [ROOT / "fixtures/keras/mlp/keras3.h5", ROOT / "fixtures/keras/cnn_gap/keras3.h5",
             ROOT / "fixtures/caffe/lenet/net.prototxt"],
}


def damaged(data, rng):
    data = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0:
        for _ in range(rng.randint(1, 6)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == 1:
        data = data[:rng.randrange(len(data))]
    elif kind == 2:
        i = rng.randrange(len(data))
        data[i:i + 8] = rng.choice([b"\xff" * 8, b"\x00" * 8, b"\x7f\xff\xff\xff\xff\xff\xff\xff"])
    else:
        a = rng.randrange(len(data))
        data = data[:a] + data[a:a + 256] * 3 + data[a:]
    return bytes(data)


def cases():
    out = []
    for fmt, files in SEEDS.items():
        for k in range(12):
            out.append(pytest.param(fmt, files[k % len(files)], k, id=f"{fmt}-{k}"))
    return out


@pytest.mark.parametrize("fmt,source,k", cases())
def test_damaged_file_is_refused_cleanly(fmt, source, k, tmp_path):
    rng = random.Random(f"{fmt}-{k}")
    for sibling in source.parent.glob(source.stem + ".*"):
        (tmp_path / sibling.name).write_bytes(sibling.read_bytes())
    target = tmp_path / source.name
    if fmt == "onnx":
        target = tmp_path / "model.onnx"
        subprocess.run([FERRY, "convert", str(source), str(target)], check=True, capture_output=True, timeout=120)
        source = target
    target.write_bytes(damaged(source.read_bytes(), rng))
    if fmt == "npy":
        args = ["run", ROOT / "fixtures/keras/mlp/keras3.h5", "--input", target, "--output", tmp_path / "y.npy"]
    elif fmt == "caffemodel":
        args = ["inspect", tmp_path / (source.stem + ".prototxt")]
    elif fmt == "json":
        args = ["inspect", target, "--weights", tmp_path / (source.stem + ".weights.h5")]
    else:
        args = ["inspect", target]
    env = {"FERRY_PROBE_TIMEOUT": "20", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([FERRY, *map(str, args)], capture_output=True, text=True, timeout=120,
                            errors="replace", env=env)
    assert result.returncode in (0, 2), f"exit {result.returncode}: {result.stderr[-2000:]}"
    if result.returncode == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]


MANIFEST = json.loads((ROOT / "fixtures/bad/manifest.json").read_text())["files"]


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_a_file_that_once_crashed_is_refused(entry, tmp_path):
    """Regression fixtures from tools/fuzz.py (fixtures/bad/manifest.json says what each did).
    The libhdf5 ones crash or hang inside the library: the child process that reads HDF5 first
    turns that into exit 2 naming the file."""
    model = ROOT / "fixtures/bad" / entry["file"]
    env = {"FERRY_PROBE_TIMEOUT": str(entry.get("probe_timeout", 20)), "PATH": "/usr/bin:/bin"}
    if "probe_memory" in entry:
        env["FERRY_PROBE_MEMORY"] = str(entry["probe_memory"])
    args = ["inspect", str(model)]
    if entry.get("command") == "check":
        args = ["check", str(model), "--save-golden", str(tmp_path / "golden")]
    result = subprocess.run([FERRY, *args], capture_output=True, text=True, timeout=120, errors="replace", env=env)
    lines = result.stderr.strip().splitlines()
    if entry.get("exit") == 0:
        # A valid (if odd) model that once crashed the runtime: it must now run.
        assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
        return
    assert result.returncode == 2, f"exit {result.returncode}: {result.stderr[-2000:]}"
    assert len(lines) == 1 and lines[0].startswith(f"error: {model}: "), result.stderr[-2000:]
    assert entry["error"] in lines[0]


def _onnx_model(path, nodes, inputs, outputs, initializers=()):
    import onnx
    from onnx import helper
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_sizes_made_from_a_files_numbers_are_bounded(tmp_path):
    """Allocation bombs that are not in the file's data: ConstantOfShape and Range made at
    import, and a run whose values would need more memory than the machine has."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    shape = numpy_helper.from_array(np.array([1 << 20, 1 << 20], dtype=np.int64), "shape")
    _onnx_model(tmp_path / "cos.onnx", [helper.make_node("ConstantOfShape", ["shape"], ["y"])], [],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [shape])
    limits = [numpy_helper.from_array(np.array(v, dtype=np.int64), n) for n, v in (("a", 0), ("b", 1 << 40), ("d", 1))]
    _onnx_model(tmp_path / "range.onnx", [helper.make_node("Range", ["a", "b", "d"], ["y"])], [],
                [helper.make_tensor_value_info("y", TensorProto.INT64, None)], limits)
    big = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1 << 16, 1 << 16, 1 << 8])]
    _onnx_model(tmp_path / "huge.onnx", [helper.make_node("Relu", ["x"], ["y"])], big,
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1 << 16, 1 << 16, 1 << 8])])
    for model, words in (("cos.onnx", "too large to make"), ("range.onnx", "too long to make")):
        result = subprocess.run([FERRY, "inspect", str(tmp_path / model)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and words in result.stderr, result.stderr
    result = subprocess.run([FERRY, "check", str(tmp_path / "huge.onnx"), "--save-golden", str(tmp_path / "g")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "too large to fill with random data" in result.stderr, result.stderr


def _rewrite_weights(source, target, kernel_units=None, compression="gzip", **dataset_options):
    """A copy of the mlp Keras file made by h5py: every weight dataset rewritten with
    `compression` (with `dataset_options`), and, with `kernel_units`, dense1 widened to that many
    units (config, kernel and bias; dense2's kernel to match), filled with a short repeating pattern."""
    import h5py
    import numpy as np
    target.write_bytes(source.read_bytes())
    with h5py.File(target, "r+") as h5:
        if kernel_units:
            config = json.loads(h5.attrs["model_config"])
            next(l for l in config["config"]["layers"] if l["config"]["name"] == "dense1")["config"]["units"] = kernel_units
            h5.attrs["model_config"] = json.dumps(config)
        names = []
        h5.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        for name in names:
            values = h5[name][()]
            if kernel_units and "dense1/" in name:
                shape = (values.shape[0], kernel_units) if values.ndim == 2 else (kernel_units,)
                values = np.resize(values, shape)
            elif kernel_units and "dense2/kernel" in name:
                values = np.resize(values, (kernel_units, values.shape[1])) / (kernel_units / values.shape[0])
            del h5[name]
            h5.create_dataset(name, data=values.astype(np.float32), compression=compression, **dataset_options)


def test_compressed_weights_are_read_within_deflates_limit(tmp_path):
    """Weights h5py wrote gzip-compressed (Keras never does, other tools may) are read, also when
    they expand to more bytes than the whole file, and give the same outputs as uncompressed ones."""
    mlp = ROOT / "fixtures/keras/mlp"
    x = mlp / "input_0.npy"
    outputs = {}
    for name, options in (("plain", {"compression": None}), ("gzip", {"shuffle": True, "fletcher32": True})):
        model = tmp_path / f"{name}.h5"
        _rewrite_weights(mlp / "keras3.h5", model, kernel_units=8192, **options)
        subprocess.run([FERRY, "run", str(model), "--input", str(x), "--output", str(tmp_path / f"{name}.npy")],
                       check=True, capture_output=True, timeout=120)
        outputs[name] = (tmp_path / f"{name}.npy").read_bytes()
    dense1 = 4 * 16 * 8192
    assert (tmp_path / "gzip.h5").stat().st_size < dense1 < (tmp_path / "plain.h5").stat().st_size
    assert outputs["gzip"] == outputs["plain"]


def test_compressed_dataset_larger_than_its_stored_bytes_allow_is_refused(tmp_path):
    """A small file declaring a huge gzip-compressed tensor: unwritten chunks (fill values) or a few
    chunks of zeros do not make Ferry allocate it; nor do filters whose expansion has no bound."""
    import h5py
    import numpy as np
    mlp = ROOT / "fixtures/keras/mlp"
    units = 1 << 24  # dense1's kernel: 16 x 2^24 float32 = 1 GiB
    cases = {}
    for name in ("unwritten", "zeros", "scaleoffset"):
        model = tmp_path / f"{name}.h5"
        _rewrite_weights(mlp / "keras3.h5", model)
        with h5py.File(model, "r+") as h5:
            config = json.loads(h5.attrs["model_config"])
            next(l for l in config["config"]["layers"] if l["config"]["name"] == "dense1")["config"]["units"] = units
            h5.attrs["model_config"] = json.dumps(config)
            path = "model_weights/dense1/mlp/dense1/kernel"
            del h5[path]
            if name == "scaleoffset":
                h5.create_dataset(path, shape=(16, units), dtype="f4", chunks=(16, 1 << 12), scaleoffset=4)
            else:
                ds = h5.create_dataset(path, shape=(16, units), dtype="f4", chunks=(16, 1 << 14), compression="gzip")
                if name == "zeros":
                    ds[:, :1 << 16] = np.zeros((16, 1 << 16), dtype=np.float32)
        assert model.stat().st_size < 1 << 20
        cases[name] = model
    words = {"unwritten": "gzip can expand the 0 compressed bytes", "zeros": "gzip can expand the",
             "scaleoffset": "Ferry reads uncompressed or gzip-compressed datasets only"}
    for name, model in cases.items():
        result = subprocess.run([FERRY, "inspect", str(model)], capture_output=True, text=True, timeout=120,
                                env={"PATH": "/usr/bin:/bin"})
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and words[name] in lines[0], result.stderr[-2000:]
