"""bfloat16 and string tensors (ONNX Cast to and from BFLOAT16 and STRING), which the IR holds
as their own element types: models made with onnx's helper, run by `ferry run`, compared with
the frameworks that define the expected values. float to bfloat16 rounds to nearest even as
onnx's reference (ml_dtypes) and onnxruntime do; numbers become text as numpy's `astype(str)`
writes them (what onnx's node tests expect), and text becomes numbers as numpy reads it.
Exported files are checked by onnx's checker and run in onnxruntime."""
import ml_dtypes
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import ferry

RNG = np.random.default_rng(16)


def cast_model(source, targets, shape, opset=13, initializers=()):
    """x (type `source`) through a chain of Casts to each type in `targets`; y is the last."""
    names = ["x"] + [f"c{i}" for i in range(len(targets) - 1)] + ["y"]
    nodes = [helper.make_node("Cast", [a], [b], to=t, name=f"cast{i}")
             for i, (a, b, t) in enumerate(zip(names, names[1:], targets))]
    graph = helper.make_graph(nodes, "casts", [helper.make_tensor_value_info("x", source, list(shape))],
                              [helper.make_tensor_value_info("y", targets[-1], list(shape))], list(initializers))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def run(m, x, tmp_path, name="model"):
    """`ferry run` of model `m` (saved as tmp_path/<name>.onnx) on x; its output y."""
    path = tmp_path / f"{name}.onnx"
    onnx.save(m, str(path))
    np.save(tmp_path / f"{name}_x.npy", x)
    ferry("run", path, "--input", f"x={tmp_path / f'{name}_x.npy'}", "--output", tmp_path / f"{name}_y.npy", check=True)
    return np.load(tmp_path / f"{name}_y.npy")


def weight_model(weight, targets):
    """y = x + nothing but a chain of Casts of a weight (ferry run reads .npy inputs as
    float32, so wider or narrower sources come in as weights): Cast(weight) ... then the last
    type is the output; x (float32, same shape) is added only when the last type is float."""
    names = ["w"] + [f"c{i}" for i in range(len(targets))]
    nodes = [helper.make_node("Cast", [a], [b], to=t, name=f"cast{i}")
             for i, (a, b, t) in enumerate(zip(names, names[1:], targets))]
    shape = list(weight.shape)
    if targets[-1] == TensorProto.FLOAT:
        nodes.append(helper.make_node("Add", ["x", names[-1]], ["y"], name="add"))
    else:
        nodes.append(helper.make_node("Identity", [names[-1]], ["y"], name="out"))
    graph = helper.make_graph(nodes, "weight_casts", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", targets[-1], shape)],
                              [numpy_helper.from_array(weight, "w")])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def float32_edges():
    """Values around numpy's switch between positional and scientific text, ties to even in
    bfloat16, subnormals, the extremes and the special values."""
    edges = np.array([0.0, -0.0, 1e-4, 9.9999e-5, 1.0001e-4, 1e-5, 1e16, 9.999999e15, 1.5e16, 123456789.0,
                      16777216.0, 0.1, 1 / 3, 100.0, -2.5, 1.5, 3.4028235e38, -3.4028235e38, 1e-45, 1.17549435e-38,
                      np.nan, np.inf, -np.inf, 65504.0, 1e30, -7.25e-20], dtype=np.float32)
    # bfloat16 ties: exactly halfway between two bfloat16 values, with an even and an odd kept part.
    ties = np.array([0x3F808000, 0x3F818000, 0xBF808000, 0x7F7F8000, 0x00008000, 0x3F80FFFF, 0x3F807FFF],
                    dtype=np.uint32).view(np.float32)
    scales = 10.0 ** RNG.integers(-12, 20, size=40)
    spread = (RNG.standard_normal(40) * scales).astype(np.float32)
    return np.concatenate([edges, ties, spread]).reshape(1, -1)


def test_float_to_bfloat16_rounds_to_nearest_even_as_ml_dtypes_and_onnxruntime(tmp_path):
    x = float32_edges()
    m = cast_model(TensorProto.FLOAT, [TensorProto.BFLOAT16, TensorProto.FLOAT], x.shape)
    got = run(m, x, tmp_path)
    want = x.astype(ml_dtypes.bfloat16).astype(np.float32)
    np.testing.assert_array_equal(got.view(np.uint32) >> 16 == want.view(np.uint32) >> 16, True)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    (runtime,) = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert np.array_equal(got, runtime, equal_nan=True)


def test_double_to_bfloat16_rounds_through_float32(tmp_path):
    """float64 to bfloat16 as ml_dtypes (onnx's reference) does: through float32, which can
    land on a bfloat16 tie that the double was not on (then rounds to even)."""
    base = np.array([1.0, -3.0, 1e10, 2.0 ** -130], dtype=np.float64)
    # Just above a bfloat16 tie (half an ulp of bfloat16 is 2^-8 relative at 1.0), by less
    # than float32 can hold: float32 rounds onto the tie, which then rounds to even (down).
    above = base * (1 + 2.0 ** -8 + 2.0 ** -30)
    below = base * (1 + 3 * 2.0 ** -8 - 2.0 ** -30)
    d = np.concatenate([base, above, below, RNG.standard_normal(20)]).reshape(1, -1)
    got = run(weight_model(d, [TensorProto.BFLOAT16, TensorProto.FLOAT]), np.zeros(d.shape, np.float32), tmp_path)
    want = d.astype(ml_dtypes.bfloat16).astype(np.float32)
    np.testing.assert_array_equal(got, want)


def concat_weight_model(weight_proto, element_type, shape):
    """x (float32) cast to `element_type`, joined with a weight of that type (Concat on axis 0,
    which the importer cannot fold), and cast back to float32: y."""
    nodes = [helper.make_node("Cast", ["x"], ["xc"], to=element_type, name="narrow"),
             helper.make_node("Concat", ["xc", "w"], ["joined"], axis=0, name="join"),
             helper.make_node("Cast", ["joined"], ["y"], to=TensorProto.FLOAT, name="widen")]
    out_shape = [shape[0] + list(weight_proto.dims)[0]] + list(shape[1:])
    graph = helper.make_graph(nodes, "weight_of_type", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], [weight_proto])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def export_and_run_in_onnxruntime(tmp_path, x, element_type):
    """`ferry convert` of tmp_path/model.onnx; the exported weight of the type, and
    onnxruntime's output on x."""
    exported = tmp_path / "exported.onnx"
    ferry("convert", tmp_path / "model.onnx", exported, check=True)
    e = onnx.load(str(exported))
    onnx.checker.check_model(e, full_check=True)
    (written,) = [t for t in e.graph.initializer if t.data_type == element_type]
    (runtime,) = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    return written, runtime


def test_bfloat16_initializer_imports_and_exports(tmp_path):
    """A bfloat16 weight (raw_data) read, used, and written back as the same bfloat16 bits."""
    w = RNG.standard_normal((3, 4)).astype(ml_dtypes.bfloat16)
    weight = helper.make_tensor("w", TensorProto.BFLOAT16, w.shape, w.view(np.uint16).tobytes(), raw=True)
    m = concat_weight_model(weight, TensorProto.BFLOAT16, [2, 4])
    x = float32_edges()[:, :8].reshape(2, 4)
    got = run(m, x, tmp_path)
    want = np.concatenate([x.astype(ml_dtypes.bfloat16), w]).astype(np.float32)
    np.testing.assert_array_equal(got, want)
    written, runtime = export_and_run_in_onnxruntime(tmp_path, x, TensorProto.BFLOAT16)
    assert written.raw_data == weight.raw_data
    np.testing.assert_array_equal(runtime, want)


def test_string_initializer_imports_and_exports(tmp_path):
    """A string weight (string_data) read, used, and written back as string_data; onnxruntime
    runs the exported file to the same numbers (its float-to-text cast writes 9 significant
    digits where numpy and Ferry write the shortest, but both read back to the same float32)."""
    words = ["1.5", "-2", "INF", "0.1", "NaN", "1e-5"]
    weight = helper.make_tensor("w", TensorProto.STRING, [3, 2], [s.encode() for s in words])
    m = concat_weight_model(weight, TensorProto.STRING, [2, 2])
    x = np.array([[0.1, -3.25], [1e20, 7]], dtype=np.float32)
    got = run(m, x, tmp_path)
    want = np.concatenate([x, np.array(words, dtype=np.float32).reshape(3, 2)])
    assert np.array_equal(got, want, equal_nan=True)
    written, runtime = export_and_run_in_onnxruntime(tmp_path, x, TensorProto.STRING)
    assert [s.decode() for s in written.string_data] == words
    assert np.array_equal(runtime, want, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_float_to_string_as_numpy_writes_it(dtype, tmp_path):
    x = float32_edges().astype(dtype)
    if dtype == np.float64:
        x = np.concatenate([x, np.array([[np.pi, 1e-300, 5e-324, 1.7976931348623157e308, 0.1 + 0.2, 1e22,
                                          9999999999999998.0, 123456789.0]])], axis=1)
    if dtype == np.float16:
        x = np.concatenate([x, np.array([[999, 1000, 12345, 65504, 6e-8, 1e-4, 0.1]], np.float16)], axis=1)
    if dtype == np.float32:
        x = np.concatenate([x, np.array([[999999.94, 1e6, 999999.0]], np.float32)], axis=1)
        got = run(cast_model(TensorProto.FLOAT, [TensorProto.STRING], x.shape), x, tmp_path)
    else:
        got = run(weight_model(x, [TensorProto.STRING]), np.zeros(x.shape, np.float32), tmp_path)
    want = x.astype(str)
    mismatches = [(v, a, b) for v, a, b in zip(x.ravel(), got.ravel(), want.ravel()) if a != b]
    assert not mismatches, mismatches[:10]


def test_bfloat16_to_string_as_numpy_writes_its_float32(tmp_path):
    """numpy has no bfloat16: its text is numpy's for the float32 it widens to (exactly)."""
    x = float32_edges()
    got = run(cast_model(TensorProto.FLOAT, [TensorProto.BFLOAT16, TensorProto.STRING], x.shape), x, tmp_path)
    np.testing.assert_array_equal(got, x.astype(ml_dtypes.bfloat16).astype(np.float32).astype(str))


def test_integers_and_bools_to_string(tmp_path):
    x = np.array([[0, -1, 2 ** 31 - 1, -2 ** 31, 42]], dtype=np.int32)
    got = run(cast_model(TensorProto.INT32, [TensorProto.STRING], x.shape), x, tmp_path)
    np.testing.assert_array_equal(got, x.astype(str))
    b = np.array([[True, False, True]])
    got = run(cast_model(TensorProto.BOOL, [TensorProto.STRING], b.shape), b, tmp_path, "bools")
    np.testing.assert_array_equal(got, b.astype(str))


def test_string_to_float_as_numpy_reads_it(tmp_path):
    texts = np.array([["0.47892547", "-1e-5", "1E8", "3.14", "1000", "INF", "+INF", "-INF", "inf", "-Inf", "NaN",
                       "nan", "1.0000000596046448", "16777217", "3.4028235e38", "1e39", "-0.0", "7"]])
    got = run(cast_model(TensorProto.STRING, [TensorProto.FLOAT], texts.shape), texts, tmp_path)
    # numpy has no "+INF"; it reads "inf" the same way.
    want = np.char.replace(texts, "+INF", "inf").astype(np.float32)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32)) or np.array_equal(got, want, equal_nan=True)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
    ints = np.array([["12", "-7", "9223372036854775807", "0"]])
    got = run(cast_model(TensorProto.STRING, [TensorProto.INT64], ints.shape), ints, tmp_path, "ints")
    np.testing.assert_array_equal(got, ints.astype(np.int64))


def test_garbage_text_is_refused(tmp_path):
    texts = np.array([["1.5", "Hello World!"]])
    path = tmp_path / "model.onnx"
    onnx.save(cast_model(TensorProto.STRING, [TensorProto.FLOAT], texts.shape), str(path))
    np.save(tmp_path / "x.npy", texts)
    result = ferry("run", path, "--input", f"x={tmp_path / 'x.npy'}", "--output", tmp_path / "y.npy")
    assert result.returncode != 0 and "Hello World!" in result.stderr, result.stderr
    assert not (tmp_path / "y.npy").exists()
