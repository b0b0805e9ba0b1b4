"""Shared helpers for the end-to-end cross-checks: they run the real `ferry` binary."""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FERRY = os.environ.get("FERRY", str(ROOT / ".build" / "debug" / "ferry"))
# `make test-large` points this at fixtures-large/ (keras.applications models built locally).
KERAS_FIXTURES = pathlib.Path(os.environ.get("FERRY_KERAS_FIXTURES", str(ROOT / "fixtures" / "keras")))


def ferry(*args, check=False):
    """Runs ferry; returns the CompletedProcess (text mode)."""
    result = subprocess.run([FERRY, *map(str, args)], capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"ferry {' '.join(map(str, args))} failed ({result.returncode}):\n{result.stderr}")
    return result


def within_tolerance(result, reference, tol=1e-4):
    """The project's agreement rule: |a - b| <= tol * max(1, max|ref|)."""
    assert result.shape == reference.shape, f"shape {result.shape} vs reference {reference.shape}"
    if reference.size == 0:
        return 0.0
    diff = float(np.max(np.abs(result.astype(np.float64) - reference)))
    bound = tol * max(1.0, float(np.max(np.abs(reference))))
    assert diff <= bound, f"max |diff| {diff:.3g} exceeds {bound:.3g}"
    return diff


def agrees_with_keras(result, model_dir, output, tol=1e-4):
    """The agreement rule against Keras's float32 reference. A keras.applications fixture may
    also name the outputs of the model's float64 twin (same file, every dtype float64:
    tools/keras_float64.py), which stand for the exact function. In deep models Keras's own
    float32 output is measurably off that function (e(keras) = |keras - f64| / max(1, max|f64|),
    7e-5 for EfficientNetV2B2, 4e-2 for the EfficientNetB7 fixture), and another float32
    implementation can be as far off in another direction. A result outside the rule still
    passes when it is within tol of the exact function plus the reference's own measured
    error: |result - f64| <= (tol + e(keras)) * max(1, max|f64|). Fixtures without float64
    outputs keep the plain rule."""
    reference = np.load(model_dir / output["npy"])
    try:
        return within_tolerance(result, reference, tol)
    except AssertionError as plain:
        if "float64" not in output:
            raise
        exact = np.load(model_dir / output["float64"])
        scale = max(1.0, float(np.max(np.abs(exact))))
        keras_error = float(np.max(np.abs(reference.astype(np.float64) - exact))) / scale
        error = float(np.max(np.abs(result.astype(np.float64) - exact))) / scale
        assert error <= tol + keras_error, (
            f"{plain}; against the float64 twin {error:.3g} exceeds {tol:.3g} + Keras float32's own {keras_error:.3g}")
        return error


def keras_cases(expect):
    """(model dir, variant) pairs of the Keras fixtures with the given expectation."""
    cases = []
    for manifest_path in sorted(KERAS_FIXTURES.glob("*/manifest.json")):
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("expect", "ok") != expect:
            continue
        for variant in manifest["variants"]:
            cases.append(pytest.param(manifest_path.parent, variant, manifest,
                                      id=f"{manifest['name']}-{variant['file']}"))
    return cases


def output_file_name(name):
    """ferry's --output-dir naming: characters outside [A-Za-z0-9._-] become '_'."""
    return "".join(c if c.isalnum() and c.isascii() or c in "._-" else "_" for c in name) + ".npy"


def model_args(model_dir, variant):
    """A fixture variant's model file, and `--weights FILE` for an architecture JSON."""
    args = [model_dir / variant["file"]]
    if "weights" in variant:
        args += ["--weights", model_dir / variant["weights"]]
    return args
