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
