"""Compare two .npy files: |a - b| <= tol * max(1, max|b|), b being the reference.

Usage: compare_npy.py RESULT.npy REFERENCE.npy [--tol 1e-4]
Prints the shapes and the largest difference; exit 0 when within tolerance, 1 otherwise.
"""
import argparse
import sys

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result")
    parser.add_argument("reference")
    parser.add_argument("--tol", type=float, default=1e-4)
    args = parser.parse_args()
    a = np.load(args.result)
    b = np.load(args.reference)
    if a.shape != b.shape:
        print(f"shape differs: {args.result} {a.shape} vs {args.reference} {b.shape}")
        return 1
    diff = float(np.max(np.abs(a.astype(np.float64) - b))) if a.size else 0.0
    bound = args.tol * max(1.0, float(np.max(np.abs(b))) if b.size else 1.0)
    ok = diff <= bound
    print(f"{'ok' if ok else 'MISMATCH'}: shape {a.shape}, max |diff| {diff:.3g} (allowed {bound:.3g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
