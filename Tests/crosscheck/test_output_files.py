"""The output-file rules end to end (issue 10): an input is never overwritten, even when the output
names it by the very same path; an existing output is replaced only with --force; and an export
or a run that fails, before writing or part-way through (the disk full: a file size limit here),
leaves no file behind and the existing output as it was. test_cli.py has the --force and
symlinked-input cases, test_export_coverage.py the exports a target cannot express."""
import os
import resource
import shutil
import signal
import subprocess

import pytest

from conftest import FERRY, KERAS_FIXTURES, ROOT

MLP = KERAS_FIXTURES / "mlp"
LENET = ROOT / "fixtures/caffe/lenet"
# Attention layers: neither a Keras nor a Caffe writer expresses them (ONNX does).
NEITHER_KERAS_NOR_CAFFE = KERAS_FIXTURES / "gelu_approximate"


def ferry(*args, cwd=None, file_limit=None):
    def limit():
        # Past the limit a write fails with EFBIG (SIGXFSZ ignored): as when the disk is full.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))
    return subprocess.run([os.path.abspath(FERRY), *map(str, args)], capture_output=True, text=True, timeout=300,
                          cwd=cwd, preexec_fn=limit if file_limit else None, errors="replace")


def files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def one_error(result, folder, path):
    """Exit 2 and one `error:` line naming `path` (as given, or absolute)."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, f"exit {result.returncode}: {result.stderr[-2000:]}"
    assert len(lines) == 1 and lines[0].startswith((f"error: {path}", f"error: {folder / path}")), result.stderr[-2000:]
    return lines[0]


@pytest.fixture
def folder(tmp_path):
    shutil.copy(MLP / "keras3.h5", tmp_path / "m.h5")
    shutil.copy(MLP / "input_0.npy", tmp_path / "x.npy")
    shutil.copy(LENET / "net.prototxt", tmp_path / "net.prototxt")
    shutil.copy(LENET / "net.caffemodel", tmp_path / "net.caffemodel")
    assert ferry("convert", "m.h5", "m.onnx", cwd=tmp_path).returncode == 0
    return tmp_path


@pytest.mark.parametrize("args,named", [
    (["convert", "m.onnx", "m.onnx"], "m.onnx"),
    (["convert", "m.onnx", "m.onnx", "--force"], "m.onnx"),
    (["convert", "m.h5", "m.h5", "--force"], "m.h5"),
    (["convert", "m.h5", "m.h5", "--to", "keras", "--force"], "m.h5"),
    # A Caffe output is a pair: either file of it may be an input.
    (["convert", "net.prototxt", "net.caffemodel", "--force"], None),
    (["convert", "m.onnx", "net.prototxt", "--to", "caffe", "--force", "--weights", "net.caffemodel"], None),
    (["run", "m.onnx", "--input", "x.npy", "--output", "x.npy", "--force"], "x.npy"),
    (["run", "m.h5", "--input", "x.npy", "--output", "m.h5", "--force"], "m.h5"),
    (["check", "m.h5", "m.onnx", "--report", "m.onnx", "--force"], "m.onnx"),
    (["check", "m.h5", "m.onnx", "--junit", "m.h5", "--force"], "m.h5"),
    (["graph", "m.h5", "-o", "m.h5", "--force"], "m.h5"),
])
def test_an_input_named_as_the_output_is_refused(args, named, folder):
    before = files(folder)
    result = ferry(*args, cwd=folder)
    assert result.returncode == 2, f"exit {result.returncode}: {result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    if named:
        assert "refusing to overwrite an input" in lines[0] and named in lines[0], lines[0]
    assert files(folder) == before


TARGETS = ["out.onnx", "out.prototxt", "out.h5", "out.keras"]


def _outputs(target):
    return [target, "out.caffemodel"] if target == "out.prototxt" else [target]


@pytest.mark.parametrize("force", [False, True], ids=["new", "forced-over-existing"])
@pytest.mark.parametrize("target", TARGETS + ["out.onnx --external-data"])
def test_an_export_failing_part_way_leaves_no_file(target, force, folder):
    """The disk fills while the model is written: exit 2 naming the output, no partial or
    temporary file, and an output that existed is kept as it was."""
    target, *extra = target.split()
    if force:
        for name in _outputs(target) + (["out.onnx.data"] if extra else []):
            (folder / name).write_bytes(b"the previous output")
    before = files(folder)
    args = ["convert", "m.h5", target, *extra] + (["--force"] if force else [])
    # The mlp's files are 5 to 30 KB: 2 KB is reached part-way through each.
    result = ferry(*args, cwd=folder, file_limit=2048)
    one_error(result, folder, target)
    assert files(folder) == before, "nothing new, nothing changed"
    assert ferry(*args[:3], "--force", *extra, cwd=folder).returncode == 0, "the same export without the limit works"


@pytest.mark.parametrize("target", TARGETS)
def test_an_export_the_target_cannot_express_keeps_the_existing_output(target, folder):
    for name in _outputs(target):
        (folder / name).write_bytes(b"the previous output")
    shutil.copy(NEITHER_KERAS_NOR_CAFFE / "keras3.h5", folder / "attention.h5")
    before = files(folder)
    result = ferry("convert", "attention.h5", target, "--force", cwd=folder)
    if target == "out.onnx":
        assert result.returncode == 0  # ONNX expresses every op Ferry's IR has
        assert (folder / "out.onnx").read_bytes() != b"the previous output"
        return
    assert result.returncode == 2 and "cannot express" in result.stderr, result.stderr
    assert files(folder) == before


@pytest.mark.parametrize("force", [False, True], ids=["new", "forced-over-existing"])
@pytest.mark.parametrize("kind", ["output", "output-dir", "report", "junit", "golden", "graph"])
def test_a_run_or_report_failing_part_way_leaves_no_file(kind, force, folder):
    out = folder / "out"
    out.mkdir()
    names = {"output": ["y.npy"], "output-dir": ["logits.npy"], "report": ["r.json"],
             "junit": ["r.xml"], "golden": ["golden.json"], "graph": ["g.dot"]}[kind]
    if force:
        for name in names:
            (out / name).write_bytes(b"the previous output")
    args = {"output": ["run", "m.h5", "--input", "x.npy", "--output", "out/y.npy"],
            "output-dir": ["run", "m.h5", "--input", "x.npy", "--output-dir", "out"],
            "report": ["check", "m.h5", "m.onnx", "--report", "out/r.json"],
            "junit": ["check", "m.h5", "m.onnx", "--junit", "out/r.xml"],
            "golden": ["check", "m.h5", "--save-golden", "out"],
            "graph": ["graph", "m.h5", "-o", "out/g.dot"]}[kind] + (["--force"] if force else [])
    before = files(out)
    # Outputs of a few hundred bytes: 64 bytes is part-way through any of them.
    result = ferry(*args, cwd=folder, file_limit=64)
    one_error(result, folder, "out/")
    assert files(out) == before, "nothing new, nothing changed"
    assert not [p for p in out.iterdir() if p.is_dir()], "no half-written sample folder"
