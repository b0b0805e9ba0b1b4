"""Mutation fuzzer for Ferry's parsers: damaged copies of the committed fixtures go through
`ferry inspect` (import) and, for files that still import, `ferry run`, each with a time limit.

Usage: .venv/bin/python tools/fuzz.py [--cases N] [--seed S] [--format h5|onnx|caffe|npy|all]
                                      [--timeout SECONDS] [--keep DIR]
Mutations: bit flips, byte overwrites with boundary values, truncation, splices of another
fixture, duplicated ranges. Reports cases run, exits by kind, crashes (a signal or an exit other
than 0/2), hangs (time limit), and the peak memory of any child. Crashing inputs are copied to
--keep so they can become regression fixtures. Exit 1 when anything crashed or hung.
"""
import argparse
import os
import pathlib
import random
import resource
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
FERRY = os.environ.get("FERRY", str(ROOT / ".build" / "debug" / "ferry"))


def seeds(fmt):
    """The fixture files a format's mutations start from, with the companion files they need."""
    fixtures = ROOT / "fixtures"
    if fmt == "h5":
        return sorted(fixtures.glob("keras/*/keras*.h5"))
    if fmt == "caffe":
        return sorted(fixtures.glob("caffe/*/*.caffemodel")) + sorted(fixtures.glob("caffe/*/*.prototxt"))
    if fmt == "npy":
        return sorted(fixtures.glob("npy/*.npy"))
    if fmt == "onnx":
        out = pathlib.Path(tempfile.mkdtemp(prefix="ferry-fuzz-onnx-"))
        files = []
        for h5 in sorted(fixtures.glob("keras/*/keras3.h5"))[:6]:
            target = out / (h5.parent.name + ".onnx")
            if subprocess.run([FERRY, "convert", str(h5), str(target)], capture_output=True).returncode == 0:
                files.append(target)
        return files
    raise ValueError(fmt)


def mutate(data, rng, others):
    data = bytearray(data)
    kind = rng.choice(["flip", "bytes", "truncate", "splice", "duplicate"])
    if not data:
        return bytes(data), kind
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == "bytes":
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            value = rng.choice([0x00, 0xFF, 0x7F, 0x80, 0x01]).to_bytes(1, "little") * rng.choice([1, 2, 4, 8])
            data[i:i + len(value)] = value
    elif kind == "truncate":
        data = data[:rng.randrange(len(data))]
    elif kind == "splice":
        other = rng.choice(others)
        a, b = rng.randrange(len(data)), rng.randrange(len(other) or 1)
        data = data[:a] + other[b:b + rng.randint(1, 4096)] + data[a:]
    else:
        a = rng.randrange(len(data))
        data = data[:a] + data[a:a + rng.randint(1, 512)] * 2 + data[a:]
    return bytes(data), kind


def run(args, timeout):
    """(exit code or None on hang, stderr)."""
    try:
        p = subprocess.run([FERRY, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                           errors="replace")
        return p.returncode, p.stderr
    except subprocess.TimeoutExpired:
        return None, ""


def fuzz_format(fmt, cases, rng, timeout, keep):
    files = seeds(fmt)
    contents = [f.read_bytes() for f in files]
    stats = {"cases": 0, "exit0": 0, "exit2": 0, "crashes": 0, "hangs": 0}
    work = pathlib.Path(tempfile.mkdtemp(prefix=f"ferry-fuzz-{fmt}-"))
    for case in range(cases):
        k = rng.randrange(len(files))
        source = files[k]
        data, kind = mutate(contents[k], rng, contents)
        folder = work / f"case{case}"
        folder.mkdir()
        # Companion files (a prototxt's caffemodel and the reverse) come along unchanged.
        for sibling in source.parent.iterdir():
            if sibling.suffix in (".prototxt", ".caffemodel") and sibling != source:
                shutil.copy(sibling, folder / sibling.name)
        target = folder / source.name
        target.write_bytes(data)
        if fmt == "npy":
            model = ROOT / "fixtures/keras/mlp/keras3.h5"
            code, err = run(["run", model, "--input", target, "--output", folder / "out.npy"], timeout)
        else:
            model = target if fmt != "caffe" else folder / (source.stem + ".prototxt")
            code, err = run(["inspect", model], timeout)
            if code == 0:
                code, err = run(["check", model, "--save-golden", folder / "golden"], timeout)
        stats["cases"] += 1
        if code is None:
            stats["hangs"] += 1
            verdict = "hang"
        elif code in (0, 1, 2):
            stats[f"exit{0 if code in (0, 1) else 2}"] += 1
            verdict = None
            if code == 2 and not err.startswith("error: "):
                verdict = "no error line"
                stats["crashes"] += 1
        else:
            stats["crashes"] += 1
            verdict = f"exit {code}"
        if verdict:
            print(f"{fmt} case {case} ({kind} of {source.relative_to(ROOT) if source.is_relative_to(ROOT) else source.name}): {verdict}")
            if keep:
                dest = pathlib.Path(keep) / fmt / f"case{case}"
                shutil.copytree(folder, dest, dirs_exist_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    return stats


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", default="all", choices=["all", "h5", "onnx", "caffe", "npy"])
    parser.add_argument("--timeout", type=float, default=20)
    parser.add_argument("--keep")
    args = parser.parse_args()
    formats = ["h5", "onnx", "caffe", "npy"] if args.format == "all" else [args.format]
    failed = False
    for fmt in formats:
        stats = fuzz_format(fmt, args.cases, random.Random(f"{args.seed}-{fmt}"), args.timeout, args.keep)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"{fmt}: {stats['cases']} cases, {stats['exit0']} imported, {stats['exit2']} refused with an error line, "
              f"{stats['crashes']} crashes, {stats['hangs']} hangs, peak child memory {peak:.0f} MiB")
        failed |= stats["crashes"] > 0 or stats["hangs"] > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
