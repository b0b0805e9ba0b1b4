"""The agreement rule with a float64 twin (conftest.agrees_with_keras): a result off Keras's
float32 reference passes only within tol of the exact outputs plus Keras's own measured error,
and never without float64 outputs."""
import numpy as np
import pytest

from conftest import agrees_with_keras

EXACT = np.array([[100.0, -50.0, 3.0]])
# Keras float32 2e-3 * 100 off the exact values: e(keras) = 2e-3.
KERAS = (EXACT + np.array([[0.2, 0.0, 0.0]])).astype(np.float32)


def fixture(tmp_path, with_float64=True):
    np.save(tmp_path / "ref.npy", KERAS)
    output = {"name": "y", "npy": "ref.npy"}
    if with_float64:
        np.save(tmp_path / "ref.f64.npy", EXACT)
        output["float64"] = "ref.f64.npy"
    return output


def test_within_the_plain_rule_passes_without_float64(tmp_path):
    output = fixture(tmp_path, with_float64=False)
    agrees_with_keras(KERAS + np.float32(0.009), tmp_path, output)


def test_off_the_reference_fails_without_float64(tmp_path):
    output = fixture(tmp_path, with_float64=False)
    with pytest.raises(AssertionError):
        agrees_with_keras(EXACT.astype(np.float32), tmp_path, output)


def test_closer_to_the_exact_outputs_than_keras_passes(tmp_path):
    # 0.2 from Keras (over 1e-4 * 100), exactly on the float64 twin.
    output = fixture(tmp_path)
    assert agrees_with_keras(EXACT.astype(np.float32), tmp_path, output) < 1e-6


def test_as_far_off_as_keras_the_other_way_passes(tmp_path):
    # 0.4 from Keras; (0.2 / 100) from the exact values <= 1e-4 + 2e-3.
    output = fixture(tmp_path)
    agrees_with_keras((EXACT - np.array([[0.2, 0.0, 0.0]])).astype(np.float32), tmp_path, output)


def test_farther_than_tol_plus_keras_error_fails(tmp_path):
    # (0.22 / 100) from the exact values > 1e-4 + 2e-3.
    output = fixture(tmp_path)
    with pytest.raises(AssertionError, match="float64 twin"):
        agrees_with_keras((EXACT - np.array([[0.0, 0.22, 0.0]])).astype(np.float32), tmp_path, output)
