"""The CLI contract: exit statuses, one `error:` line, output naming."""
import re
import numpy as np

from conftest import KERAS_FIXTURES, ferry, output_file_name, within_tolerance

MLP = KERAS_FIXTURES / "mlp"
TWO = KERAS_FIXTURES / "two_outputs"


def test_run_single_output_file_and_positional_input(tmp_path):
    out = tmp_path / "y.npy"
    ferry("run", MLP / "keras3.h5", "--input", MLP / "input_0.npy", "--output", out, check=True)
    within_tolerance(np.load(out), np.load(MLP / "keras3_output_0.npy"))


def test_run_accepts_float64_inputs_and_another_batch_size(tmp_path):
    x = np.load(MLP / "input_0.npy")
    big = np.concatenate([x, x, x]).astype(np.float64)
    np.save(tmp_path / "x64.npy", big)
    out = tmp_path / "y.npy"
    ferry("run", MLP / "keras2.h5", "--input", f"features={tmp_path / 'x64.npy'}", "--output", out, check=True)
    y = np.load(out)
    ref = np.load(MLP / "keras2_output_0.npy")
    within_tolerance(y, np.concatenate([ref, ref, ref]))


def test_several_outputs_need_output_dir(tmp_path):
    result = ferry("run", TWO / "keras3.h5", "--input", TWO / "input_0.npy", "--output", tmp_path / "y.npy")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "--output-dir" in result.stderr


def test_output_names_are_sanitized():
    assert output_file_name("a/b:0") == "a_b_0.npy"


def test_wrong_input_shape_is_a_clear_error(tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((2, 15), np.float32))
    result = ferry("run", MLP / "keras3.h5", "--input", tmp_path / "bad.npy", "--output", tmp_path / "y.npy")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "features" in result.stderr
    assert not (tmp_path / "y.npy").exists()


def test_usage_errors_exit_2():
    assert ferry("run", MLP / "keras3.h5").returncode == 2
    assert ferry("frobnicate").returncode == 2
    assert ferry("convert", MLP / "keras3.h5", "/tmp/x.unknown").returncode == 2


def test_missing_and_garbage_files_exit_2(tmp_path):
    result = ferry("inspect", tmp_path / "nope.h5")
    assert result.returncode == 2 and "nope.h5" in result.stderr
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"this is not HDF5" * 10)
    result = ferry("inspect", junk)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "junk.h5" in result.stderr


def test_bench_reports_latency():
    import json
    result = ferry("bench", MLP / "keras3.h5", "--runs", "3", "--batch", "2", "--json", check=True)
    figures = json.loads(result.stdout)
    assert figures["runs"] == 3 and 0 < figures["minMilliseconds"] <= figures["medianMilliseconds"] <= figures["p90Milliseconds"]
    assert ferry("bench", MLP / "keras3.h5", "--runs", "0").returncode == 2


def test_help_exits_0():
    result = ferry("--help")
    assert result.returncode == 0 and "convert" in result.stdout


def test_existing_outputs_need_force(tmp_path):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"precious")
    result = ferry("convert", MLP / "keras3.h5", out)
    assert result.returncode == 2 and "--force" in result.stderr and out.read_bytes() == b"precious"
    assert ferry("convert", MLP / "keras3.h5", out, "--force").returncode == 0 and out.read_bytes() != b"precious"
    y = tmp_path / "y.npy"
    y.write_bytes(b"keep")
    assert ferry("run", MLP / "keras3.h5", "--input", MLP / "input_0.npy", "--output", y).returncode == 2
    assert y.read_bytes() == b"keep"
    assert ferry("run", MLP / "keras3.h5", "--input", MLP / "input_0.npy", "--output", y, "--force").returncode == 0


def test_an_existing_onnx_data_file_needs_force(tmp_path):
    """ONNX external data goes to <model>.onnx.data: an existing one is an output like the model,
    replaced only with --force (by rename, leaving no temporary file), and the result reads back."""
    import onnx
    out = tmp_path / "m.onnx"
    data = tmp_path / "m.onnx.data"
    data.write_bytes(b"precious")
    result = ferry("convert", MLP / "keras3.h5", out, "--external-data")
    assert result.returncode == 2 and "m.onnx.data" in result.stderr and "--force" in result.stderr, result.stderr
    assert data.read_bytes() == b"precious" and not out.exists()
    ferry("convert", MLP / "keras3.h5", out, "--external-data", "--force", check=True)
    assert data.read_bytes() != b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.data"]
    model = onnx.load(str(out), load_external_data=False)
    assert any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    onnx.checker.check_model(str(out), full_check=True)
    x = np.load(MLP / "input_0.npy")
    import onnxruntime as ort
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    ferry("run", MLP / "keras3.h5", "--input", MLP / "input_0.npy", "--output", tmp_path / "y.npy", check=True)
    within_tolerance(session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0], np.load(tmp_path / "y.npy"))


def test_an_input_is_never_overwritten_even_with_force(tmp_path):
    model = tmp_path / "m.h5"
    model.write_bytes((MLP / "keras3.h5").read_bytes())
    x = tmp_path / "x.npy"
    x.write_bytes((MLP / "input_0.npy").read_bytes())
    link = tmp_path / "link.npy"
    link.symlink_to(x)
    for args in (["run", model, "--input", x, "--output", x, "--force"],
                 ["run", model, "--input", x, "--output", link, "--force"],
                 ["convert", model, tmp_path / "." / "m.h5", "--force"],
                 ["check", model, model, "--report", model, "--force"]):
        result = ferry(*args)
        assert result.returncode == 2 and "refusing to overwrite an input" in result.stderr, result.stderr
    assert x.read_bytes() == (MLP / "input_0.npy").read_bytes()
    assert model.read_bytes() == (MLP / "keras3.h5").read_bytes()


def test_check_reports_need_force(tmp_path):
    report = tmp_path / "r.json"
    report.write_text("keep")
    result = ferry("check", MLP / "keras3.h5", MLP / "keras3.h5", "--report", report)
    assert result.returncode == 2 and "--force" in result.stderr and report.read_text() == "keep"
    assert ferry("check", MLP / "keras3.h5", MLP / "keras3.h5", "--report", report, "--force").returncode == 0
    assert report.read_text() != "keep"


def test_inspect_passes_text_and_json():
    import json
    flatten = KERAS_FIXTURES / "cnn_flatten" / "keras3.h5"
    text = ferry("inspect", flatten, "--passes", check=True).stdout
    assert re.search(r"\n  fold-transpose-into-gemm +1 transposes folded into weights\n", text), text
    data = json.loads(ferry("inspect", flatten, "--passes", "--json", check=True).stdout)
    assert data["optimizer"]["nodesAfter"] < data["optimizer"]["nodesBefore"] == 10
    ops = {o["op"]: o["count"] for o in data["ops"]}
    assert ops["Transpose"] == 1 and "Relu" not in ops and "Tanh" not in ops  # fused into the Convs


def test_optimized_graphs_keep_no_batchnorm():
    import json
    for manifest in sorted(KERAS_FIXTURES.glob("*/manifest.json")):
        model = manifest.parent / "keras3.h5"
        if json.loads(manifest.read_text()).get("expect", "ok") != "ok" or not model.exists():
            continue
        data = json.loads(ferry("inspect", model, "--passes", "--json", check=True).stdout)
        assert all(o["op"] != "BatchNormalization" for o in data["ops"]), model


def test_import_warnings_go_to_stderr():
    net = KERAS_FIXTURES.parent / "caffe" / "train_val" / "net.prototxt"
    result = ferry("inspect", net, check=True)
    warnings = result.stderr.strip().splitlines()
    assert warnings and all(w.startswith(f"warning: {net}: ") for w in warnings)
