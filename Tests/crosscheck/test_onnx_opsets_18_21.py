"""ONNX import at opsets 18 to 21, which the node tests (onnx 1.12, opsets up to 17) do not reach:
the ops whose form changed there (reduction axes and Pad axes as inputs, Resize axes and its
opset-18 attributes, Split num_outputs, GroupNormalization's scale per group at 18 and per
channel at 21, Gelu at 20, the type-only revisions of 19 and 21) in models made with onnx's
helper, run by `ferry run` and compared with onnxruntime (onnx's ReferenceEvaluator where
onnxruntime has no kernel). Forms the IR cannot express must be refused by name (exit 2)."""
import pathlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from conftest import ferry, within_tolerance

IR_VERSION = {13: 7, 18: 8, 19: 9, 20: 9, 21: 10}
RNG = np.random.default_rng(18)
X = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
POSITIVE = (np.abs(X) + 0.1).astype(np.float32)


def model(opset, nodes, x, outputs, constants=(), output_types=None, output_shapes=None, checked=True):
    """A graph of `nodes` with input x and initializers `constants` (name, array); output
    shapes from onnx's inference unless given (it has none for some function ops)."""
    types = output_types or [onnx.TensorProto.FLOAT] * len(outputs)
    shapes = output_shapes or [None] * len(outputs)
    graph = helper.make_graph(
        nodes, "opset_case",
        [helper.make_tensor_value_info("x", helper.np_dtype_to_tensor_dtype(x.dtype), list(x.shape))],
        [helper.make_tensor_value_info(name, t, shape) for name, t, shape in zip(outputs, types, shapes)],
        [numpy_helper.from_array(np.asarray(value), name) for name, value in constants])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = IR_VERSION[opset]
    # Output shapes from onnx's own (strict) inference, then the full checker.
    if checked:
        m = onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True)
        onnx.checker.check_model(m, full_check=True)
    return m


def op(opset, op_type, x=X, constants=(), attributes=None, outputs=("y",), output_types=None, output_shapes=None,
       checked=True):
    """One node: input x, then the constants (a None value leaves that input empty)."""
    inputs = ["x"] + [name if value is not None else "" for name, value in constants]
    node = helper.make_node(op_type, inputs, list(outputs), name=f"{op_type.lower()}_node", **(attributes or {}))
    return model(opset, [node], x, list(outputs), [(n, v) for n, v in constants if v is not None], output_types,
                 output_shapes, checked)


def axes(*values):
    return np.array(values, dtype=np.int64)


CASES = {}
for name in ["ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
             "ReduceLogSumExp", "ReduceSumSquare", "ReduceSum"]:
    CASES[f"{name}_18_axes_input"] = (op(18, name, POSITIVE, [("axes", axes(1, -1))]), POSITIVE)
    CASES[f"{name}_18_keepdims0"] = (op(18, name, POSITIVE, [("axes", axes(2))], {"keepdims": 0}), POSITIVE)
    CASES[f"{name}_18_all_axes"] = (op(18, name, POSITIVE), POSITIVE)
    # No axis reduced: each element is reduced alone (|x| for L1, x * x for SumSquare, ...).
    signed = POSITIVE if name == "ReduceLogSum" else X
    CASES[f"{name}_18_noop_empty_axes"] = (op(18, name, signed, attributes={"noop_with_empty_axes": 1}), signed)
    CASES[f"{name}_18_noop_empty_axes_input"] = (op(18, name, signed, [("axes", axes())], {"noop_with_empty_axes": 1}),
                                                 signed)
CASES["ReduceMax_20"] = (op(20, "ReduceMax", X, [("axes", axes(0, 3))]), X)
CASES["ReduceMin_20"] = (op(20, "ReduceMin", X, [("axes", axes(-2))], {"keepdims": 0}), X)

PADS = np.array([1, 2, 0, 1], dtype=np.int64)
CASES["Pad_18_axes_constant"] = (op(18, "Pad", X, [("pads", PADS), ("value", np.array(1.5, np.float32)), ("axes", axes(2, 3))]), X)
CASES["Pad_18_negative_axes_reflect"] = (op(18, "Pad", X, [("pads", PADS), ("value", None), ("axes", axes(-1, 1))],
                                            {"mode": "reflect"}), X)
CASES["Pad_19_edge_axes"] = (op(19, "Pad", X, [("pads", PADS), ("value", None), ("axes", axes(0, 2))], {"mode": "edge"}), X)
CASES["Pad_21_constant"] = (op(21, "Pad", X, [("pads", np.array([0, 1, 1, 0, 0, 0, 2, 1], np.int64))]), X)

SCALES = np.array([2.0, 1.5], dtype=np.float32)
CASES["Resize_18_axes_scales_linear"] = (op(18, "Resize", X, [("roi", None), ("scales", SCALES)],
                                            {"mode": "linear", "axes": [2, 3]}), X)
CASES["Resize_18_axes_sizes_nearest"] = (op(18, "Resize", X, [("roi", None), ("scales", None), ("sizes", axes(7, 3))],
                                            {"mode": "nearest", "axes": [3, 2]}), X)
CASES["Resize_18_cubic_stretch_antialias0"] = (op(18, "Resize", X, [("roi", None), ("scales", SCALES)],
                                                  {"mode": "cubic", "axes": [-2, -1], "antialias": 0,
                                                   "keep_aspect_ratio_policy": "stretch"}), X)
CASES["Resize_19_align_corners"] = (op(19, "Resize", X, [("roi", None), ("scales", None), ("sizes", axes(2, 3, 6, 9))],
                                       {"mode": "linear", "coordinate_transformation_mode": "align_corners"}), X)

CASES["Split_18_num_outputs_even"] = (op(18, "Split", X, attributes={"axis": 1, "num_outputs": 3},
                                         outputs=("a", "b", "c")), X)
SEVEN = RNG.standard_normal((2, 7)).astype(np.float32)
CASES["Split_18_num_outputs_uneven"] = (op(18, "Split", SEVEN, attributes={"axis": 1, "num_outputs": 3},
                                           outputs=("a", "b", "c")), SEVEN)
CASES["Split_18_split_input"] = (op(18, "Split", SEVEN, [("split", axes(2, 5))], {"axis": -1}, outputs=("a", "b")), SEVEN)

GN = RNG.standard_normal((2, 6, 3, 4)).astype(np.float32)
CASES["GroupNormalization_18_per_group"] = (op(18, "GroupNormalization", GN,
                                               [("scale", np.array([0.5, 2.0, -1.0], np.float32)),
                                                ("bias", np.array([0.1, 0.0, 0.3], np.float32))],
                                               {"num_groups": 3, "epsilon": 1e-3}, output_shapes=[GN.shape],
                                               # onnx 1.23's checker refuses opset 18's form as deprecated (since 21)
                                               checked=False), GN)
CASES["GroupNormalization_21_per_channel"] = (op(21, "GroupNormalization", GN,
                                                 [("scale", RNG.standard_normal(6).astype(np.float32)),
                                                  ("bias", RNG.standard_normal(6).astype(np.float32))],
                                                 {"num_groups": 2}, output_shapes=[GN.shape]), GN)

CASES["Gelu_20"] = (op(20, "Gelu", X), X)
CASES["Gelu_20_tanh"] = (op(20, "Gelu", X, attributes={"approximate": "tanh"}), X)
CASES["Mish_18"] = (op(18, "Mish", X), X)

# Opset 21's type-only revisions, and 19's Cast, Reshape, Shape, Size, Identity, in one graph.
for opset in (19, 21):
    CASES[f"type_revisions_{opset}"] = (model(opset, [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1, 3]),
        helper.make_node("Flatten", ["t"], ["f"], axis=2),
        helper.make_node("Reshape", ["f", "shape"], ["r"]),
        helper.make_node("Unsqueeze", ["r", "one"], ["u"]),
        helper.make_node("Squeeze", ["u", "one"], ["s"]),
        helper.make_node("Identity", ["s"], ["i"]),
        helper.make_node("Cast", ["i"], ["half"], to=onnx.TensorProto.FLOAT16),
        helper.make_node("Cast", ["half"], ["y"], to=onnx.TensorProto.FLOAT),
        helper.make_node("Shape", ["x"], ["shape_of_x"], start=1, end=3),
        helper.make_node("ConstantOfShape", ["shape_of_x"], ["filled"],
                         value=helper.make_tensor("v", onnx.TensorProto.FLOAT, [1], [0.25])),
        helper.make_node("Size", ["filled"], ["count"]),
        helper.make_node("Cast", ["count"], ["z"], to=onnx.TensorProto.FLOAT),
    ], X, ["y", "z", "filled"], [("shape", axes(4, -1)), ("one", axes(1))]), X)


def reference(m, x):
    """onnxruntime's outputs, or onnx's ReferenceEvaluator's where onnxruntime lacks the kernel."""
    try:
        session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        return [o.name for o in session.get_outputs()], session.run(None, {"x": x}), "onnxruntime"
    except Exception as e:  # noqa: BLE001 - only a missing kernel may fall back
        if "NOT_IMPLEMENTED" not in str(e) and "not implemented" not in str(e).lower():
            raise
    evaluator = ReferenceEvaluator(m)
    return list(evaluator.output_names), evaluator.run(None, {"x": x}), "onnx reference"


@pytest.mark.parametrize("case", sorted(CASES))
def test_import_matches_onnxruntime(case, tmp_path):
    m, x = CASES[case]
    path = tmp_path / "model.onnx"
    onnx.save(m, str(path))
    np.save(tmp_path / "x.npy", x)
    names, expected, _ = reference(m, x)
    out = tmp_path / "out"
    ferry("run", path, "--input", f"x={tmp_path / 'x.npy'}", "--output-dir", out, check=True)
    for name, want in zip(names, expected):
        got = np.load(out / f"{name}.npy")
        assert got.dtype == want.dtype, f"{name}: {got.dtype} vs {want.dtype}"
        within_tolerance(got, want.astype(np.float64))


REFUSED = {
    # What the IR has no form for: the error names the op and what of it.
    "Resize_18_antialias": (op(18, "Resize", X, [("roi", None), ("scales", SCALES)],
                               {"mode": "linear", "axes": [2, 3], "antialias": 1}), "antialias"),
    "Resize_18_keep_aspect_ratio_policy": (op(18, "Resize", X, [("roi", None), ("scales", None), ("sizes", axes(8, 8))],
                                              {"axes": [2, 3], "keep_aspect_ratio_policy": "not_larger"}),
                                           "keep_aspect_ratio_policy"),
    "Resize_19_half_pixel_symmetric": (op(19, "Resize", X, [("roi", None), ("scales", SCALES)],
                                          {"axes": [2, 3], "coordinate_transformation_mode": "half_pixel_symmetric"}),
                                       "half_pixel_symmetric"),
    "Pad_19_wrap": (op(19, "Pad", X, [("pads", PADS), ("value", None), ("axes", axes(2, 3))], {"mode": "wrap"}), "wrap"),
    "AveragePool_19_dilations": (op(19, "AveragePool", X, attributes={"kernel_shape": [2, 2], "dilations": [2, 1]}),
                                 "dilations"),
    "Col2Im_18": (model(18, [helper.make_node("Col2Im", ["x", "image", "block"], ["y"])],
                        RNG.standard_normal((1, 4, 9)).astype(np.float32), ["y"],
                        [("image", axes(4, 4)), ("block", axes(2, 2))]), "Col2Im (domain ai.onnx, opset 18)"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_by_name(case, tmp_path):
    m, words = REFUSED[case]
    path = tmp_path / "model.onnx"
    onnx.save(m, str(path))
    result = ferry("convert", path, tmp_path / "out.onnx")
    assert result.returncode == 2, result.stderr
    assert words in result.stderr, result.stderr
    assert not (tmp_path / "out.onnx").exists()


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("opset", [13, 19])
def test_align_corners_by_a_fractional_length(mode, opset, tmp_path):
    """align_corners downsampling by scales whose output length n * scale is not whole (4 x 0.6
    = 2.4 cells, 2 in the output): ONNX divides by the fractional length (onnx's reference and
    the node tests), onnxruntime by the whole one. Ferry imports ONNX's map (as
    tf_crop_and_resize), so its run and its exported file in onnxruntime both give onnx's
    reference output."""
    constants = [("roi", np.array([], np.float32)), ("scales", np.array([1, 1, 0.6, 0.8], np.float32))]
    m = op(opset, "Resize", X, constants, {"mode": mode, "coordinate_transformation_mode": "align_corners"})
    path = tmp_path / "model.onnx"
    onnx.save(m, str(path))
    np.save(tmp_path / "x.npy", X)
    (want,) = ReferenceEvaluator(m).run(None, {"x": X})
    assert want.shape == (2, 3, 2, 4)
    ferry("run", path, "--input", f"x={tmp_path / 'x.npy'}", "--output", tmp_path / "y.npy", check=True)
    within_tolerance(np.load(tmp_path / "y.npy"), want.astype(np.float64))
    exported = tmp_path / "ferry.onnx"
    ferry("convert", path, exported, check=True)
    onnx.checker.check_model(onnx.load(str(exported)), full_check=True)
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    within_tolerance(session.run(None, {"x": X})[0], want.astype(np.float64))
