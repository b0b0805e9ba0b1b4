"""Mutation fuzzer for Ferry's parsers. Damaged copies of the committed fixtures go through the
same reading, optimizing and running as `ferry inspect` and `ferry run`, in-process in a
`ferry fuzz-target` child that takes case after case on its standard input (starting a process
per case would cost more than the case). When the child dies, the case it had is the one that
killed it; when it does not answer within the time limit (CPU seconds of the child, so that a
loaded machine does not make slow cases look hung), the case hangs. Either way the case is
saved (--keep) and a fresh child takes the next case.

Usage: .venv/bin/python tools/fuzz.py [--format h5|keras|json|prototxt|caffemodel|onnx|npy|all]
           [--cases N] [--seed S] [--timeout SECONDS] [--keep DIR] [--report FILE.json]
           [--verify N] [--case K]

Formats and what they mutate (tools/fuzz_mutators.py): h5 (bytes; model_config JSON, weight and
layer name attributes, dataset shapes and types through h5py), keras (.keras zip members:
config.json, model.weights.h5, escaping and duplicate member names, lying sizes), json (the
architecture JSON of a JSON + weights pair: types, numbers, inbound references, cycles), prototxt
(numbers, names, duplicated layers), caffemodel and onnx (protobuf fields decoded, changed and
encoded again: dims, packed data lengths, names; onnx also through the onnx package), npy
(header fields and bytes). Case K of a run is reproducible alone: --case K with the same seed.

Crashes and hangs are told apart by where they happen (the stack the fuzz target prints on a
fatal signal; a hung child is sent SIGABRT): inside libhdf5, or in Ferry's own code. Up to --verify of each kind go through the
real `ferry inspect`, whose child-process isolation must turn them into exit 2 and one `error:`
line. Exit status 1 when Ferry's own code crashed or hung, or the isolation failed.
"""
import argparse
import json
import os
import pathlib
import random
import re
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import fuzz_mutators as M  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
FERRY = os.environ.get("FERRY", str(ROOT / ".build" / "debug" / "ferry"))
FORMATS = ["h5", "keras", "json", "prototxt", "caffemodel", "onnx", "npy"]
HDF5_FORMATS = {"h5", "keras", "json"}
NPY_MODEL = ROOT / "fixtures/keras/mlp/keras3.h5"
MEMORY_LIMIT = 6 << 30  # address space of the child: an allocation bomb fails instead of swapping
MEMORY_STEP = 128 << 20  # a case raising the child's peak RSS by more is saved (tracing peaks)
MEMORY_FLOOR = 256 << 20
# A case of Ferry's past --timeout is run again alone with this many CPU seconds (or 20 times the
# limit): answering then makes it slow, not a hang.
SLOW_LIMIT = 10


# ---------------------------------------------------------------- seeds

def seeds(fmt, scratch):
    """A list of seeds; each is a list of (file name, bytes, mutable) for one case."""
    fixtures = ROOT / "fixtures"
    out = []
    if fmt == "h5":
        for f in sorted(fixtures.glob("keras/*/keras*.h5")):
            if not f.name.endswith(".weights.h5"):
                out.append([("model.h5", f.read_bytes(), True)])
    elif fmt == "keras":
        for f in sorted(fixtures.glob("keras/*/*.keras")):
            out.append([("model.keras", f.read_bytes(), True)])
    elif fmt == "json":
        import h5py
        for f in sorted(fixtures.glob("keras/*/keras*.json")):
            weights = f.with_name(f.stem + ".weights.h5")
            if weights.exists():
                out.append([("model.json", f.read_bytes(), True), ("weights.h5", weights.read_bytes(), False)])
        for f in sorted(fixtures.glob("keras/*/keras*.h5")):
            if f.name.endswith(".weights.h5"):
                continue
            with h5py.File(f, "r") as h5:
                config = h5.attrs.get("model_config")
            if config is not None:
                config = config if isinstance(config, bytes) else str(config).encode()
                out.append([("model.json", config, True), ("weights.h5", f.read_bytes(), False)])
    elif fmt in ("prototxt", "caffemodel"):
        for p in sorted(fixtures.glob("caffe/*/*.prototxt")):
            w = p.with_suffix(".caffemodel")
            if fmt == "prototxt":
                files = [("model.prototxt", p.read_bytes(), True)]
                if w.exists():
                    files.append(("model.caffemodel", w.read_bytes(), False))
                out.append(files)
            elif w.exists():
                out.append([("model.prototxt", p.read_bytes(), False), ("model.caffemodel", w.read_bytes(), True)])
                out.append([("model.caffemodel", w.read_bytes(), True)])
    elif fmt == "onnx":
        folder = scratch / "onnx-seeds"
        folder.mkdir(exist_ok=True)
        sources = [f for f in sorted(fixtures.glob("keras/*/keras3.h5"))]
        sources += [p for p in sorted(fixtures.glob("caffe/*/*.prototxt")) if p.with_suffix(".caffemodel").exists()]
        for src in sources:
            target = folder / f"{src.parent.name}-{src.stem}.onnx"
            args = [FERRY, "convert", str(src), str(target), "--force"]
            if subprocess.run(args, capture_output=True).returncode == 0:
                out.append([("model.onnx", target.read_bytes(), True)])
    elif fmt == "npy":
        for f in sorted(fixtures.glob("npy/*.npy")) + sorted(fixtures.glob("keras/mlp*/input_0.npy")):
            out.append([("input.npy", f.read_bytes(), True)])
    return out


def mutate_npy(data, rng):
    """Header shape and dtype fields, header length, or bytes."""
    kind = rng.randrange(4)
    header_end = data.find(b"\n", 10)
    if kind == 0 and header_end > 0:
        m = re.search(rb"\(([^)]*)\)", data[:header_end])
        if m:
            dims = [rng.choice(M.INTERESTING_INTS) for _ in range(rng.randint(0, 4))]
            text = b"(" + b", ".join(str(d).encode() for d in dims) + (b",)" if len(dims) == 1 else b")")
            return data[:m.start()] + text + data[m.end():]
    if kind == 1 and header_end > 0:
        descr = rng.choice([b"<f4", b">f8", b"|b1", b"<i8", b"<c8", b"O", b"<U3", b"|V4", b"<f2", b"<i4"])
        return re.sub(rb"'descr': '[^']*'", b"'descr': '" + descr + b"'", data, count=1)
    if kind == 2 and len(data) > 12:
        b = bytearray(data)
        b[8:10] = rng.choice([b"\xff\xff", b"\x00\x00", b"\x01\x00"])
        if rng.random() < 0.3:
            b[6] = rng.choice([2, 3, 4, 0])
        return bytes(b)
    return M.mutate_bytes(data, rng)


def mutate_case(fmt, seed_files, rng, others, scratch):
    files = []
    for name, data, mutable in seed_files:
        if mutable:
            roll = rng.random()
            if fmt == "h5":
                data = M.mutate_h5(data, rng, scratch / "m.h5") if roll < 0.3 else M.mutate_bytes(data, rng, others)
            elif fmt == "keras":
                data = M.mutate_keras_zip(data, rng, scratch / "m.h5")
            elif fmt == "json":
                data = M.mutate_json(data, rng)
            elif fmt == "prototxt":
                data = M.mutate_prototxt(data, rng)
            elif fmt == "caffemodel":
                data = M.mutate_protobuf(data, rng) if roll < 0.6 else M.mutate_bytes(data, rng, others)
            elif fmt == "onnx":
                data = (M.mutate_onnx(data, rng) if roll < 0.35 else
                        M.mutate_protobuf(data, rng) if roll < 0.7 else M.mutate_bytes(data, rng, others))
            elif fmt == "npy":
                data = mutate_npy(data, rng)
        files.append((name, data))
    return files


# ---------------------------------------------------------------- the in-process child

class Died(Exception):
    pass


class Harness:
    """One `ferry fuzz-target` process, fed a case at a time."""

    def __init__(self, fmt, log):
        args = [FERRY, "fuzz-target", "--work", str(pathlib.Path(log).parent)]
        if fmt == "npy":
            args += ["--model", str(NPY_MODEL)]
        # Its own temporary folder: what a killed child leaves (.keras weights) is removed with it.
        self.temp = pathlib.Path(tempfile.mkdtemp(prefix="child-", dir=pathlib.Path(log).parent))
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", FERRY_NO_ISOLATION="1", TMPDIR=str(self.temp))

        def limits():
            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     env=env, preexec_fn=limits)
        self.buffer = b""
        self.peak_kib = 0

    def send(self, case_id, files, timeout):
        message = f"CASE {case_id} {len(files)}\n".encode()
        for name, data in files:
            message += f"{name} {len(data)}\n".encode() + data
        try:
            self.proc.stdin.write(message)
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise Died()
        # The limit is on the child's CPU time, not the wall clock: on a loaded machine under
        # nice a healthy child may wait for a core for seconds, a looping one burns CPU. The wall
        # clock only catches a child blocked for good (20 times the limit, at least a minute).
        start_cpu, start_wall = self.cpu_seconds(), time.monotonic()
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            if (self.cpu_seconds() - start_cpu > timeout
                    or time.monotonic() - start_wall > max(60, 20 * timeout)):
                raise TimeoutError()
            ready, _, _ = select.select([fd], [], [], 0.25)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise Died()
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        parts = line.decode(errors="replace").split(" ", 2)
        if parts[0] != str(case_id):
            raise RuntimeError(f"answer for case {parts[0]}, expected {case_id}")
        return parts[1], parts[2] if len(parts) > 2 else ""

    def cpu_seconds(self):
        try:
            fields = pathlib.Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def memory(self):
        try:
            status = pathlib.Path(f"/proc/{self.proc.pid}/status").read_text()
            self.peak_kib = max(self.peak_kib, int(re.search(r"VmHWM:\s+(\d+)", status).group(1)))
        except (OSError, AttributeError):
            pass
        return self.peak_kib

    def stop(self, abort=False):
        if abort:
            # SIGABRT: the fuzz target prints where it was before it dies.
            self.proc.send_signal(signal.SIGABRT)
        else:
            self.memory()
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        # wait4 rather than wait: its resource usage gives the child's peak memory also when it
        # died (a dead child has no /proc status to read).
        deadline = time.monotonic() + 10
        while True:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                self.proc.kill()
                pid, status, usage = os.wait4(self.proc.pid, 0)
                break
            time.sleep(0.01)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.peak_kib = max(self.peak_kib, usage.ru_maxrss)
        self.log.close()
        shutil.rmtree(self.temp, ignore_errors=True)
        shutil.rmtree(pathlib.Path(self.temp.parent) / f"ferry-fuzz-{self.proc.pid}", ignore_errors=True)
        return self.proc.returncode


# ---------------------------------------------------------------- crashes

def save_case(keep, fmt, case_id, files, verdict, log_tail):
    folder = pathlib.Path(keep) / fmt / f"case{case_id}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files:
        (folder / name).write_bytes(data)
    (folder / "files.txt").write_text("\n".join(name for name, _ in files) + "\n")
    (folder / "verdict.txt").write_text(verdict + "\n" + log_tail)
    return folder


def stack_of_a_rerun(fmt, files, timeout, scratch):
    """The log of a fresh child given only this case, when it crashes or hangs again; else ''."""
    log = scratch / "rerun.log"
    harness = Harness(fmt, log)
    try:
        harness.send(0, files, timeout)
        harness.stop()
        return ""
    except TimeoutError:
        harness.stop(abort=True)
    except Died:
        harness.stop()
    return log.read_bytes()[-6000:].decode(errors="replace")


def cpu_of_a_rerun(fmt, files, timeout, scratch):
    """CPU seconds a fresh child spends answering this case alone, or None when it does not
    answer within `timeout` CPU seconds (or dies)."""
    harness = Harness(fmt, scratch / "slow.log")
    try:
        start = harness.cpu_seconds()
        harness.send(0, files, timeout)
        used = harness.cpu_seconds() - start
        harness.stop()
        return used
    except TimeoutError:
        harness.stop(abort=True)
    except Died:
        harness.stop()
    return None


def where_it_crashed(log_text):
    """'libhdf5' or 'ferry', from the stack the fuzz target prints on a fatal signal (glibc's
    backtrace_symbols_fd, one `library(symbol+offset) [address]` line per frame): the innermost
    frame below the signal trampoline that is not in libc names the library."""
    if "fatal signal" not in log_text:
        return "unknown (no stack)"
    frames = log_text[log_text.rfind("fatal signal"):].splitlines()[1:]
    seen_trampoline = False
    for frame in frames:
        if "libc.so" in frame:
            seen_trampoline = True
            continue
        if seen_trampoline:
            return "libhdf5" if "libhdf5" in frame else "ferry"
    return "ferry"


def symbolize(log_text):
    """The crashed stack's frames in Ferry's binary as `function at file:line` (llvm-symbolizer
    or addr2line), and the first frame in Ferry's sources below the signal trampoline."""
    stack = log_text[log_text.rfind("fatal signal"):]
    binary = os.path.realpath(FERRY)
    offsets = re.findall(re.escape(os.path.basename(binary)) + r"\(\+(0x[0-9a-f]+)\)", stack)[2:40]
    tool = shutil.which("llvm-symbolizer")
    if not offsets or not tool:
        return "", ""
    try:
        p = subprocess.run([tool, f"--obj={binary}", "-p", "--demangle", *offsets], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "", ""
    lines = [l.strip() for l in p.stdout.splitlines() if l.strip()]
    where = next((m.group(1) for l in lines for m in [re.search(r"(Sources/\S+\.swift:\d+)", l)]
                  if m and "FuzzTarget.swift" not in l and not m.group(1).endswith(":0")), "")
    return "\n".join(lines), where


def through_the_cli(folder, files, timeout):
    """Reads the saved case with the real `ferry inspect` (child-process isolation on)."""
    main = folder / files[0][0]
    args = [FERRY, "inspect", str(main)]
    weights = [n for n, _ in files if n.startswith("weights.")]
    if weights:
        args += ["--weights", str(folder / weights[0])]
    env = {"PATH": "/usr/bin:/bin", "FERRY_PROBE_TIMEOUT": str(max(3, timeout)), "OPENBLAS_NUM_THREADS": "1"}
    p = subprocess.run(args, capture_output=True, text=True, errors="replace", env=env, timeout=120)
    lines = p.stderr.strip().splitlines()
    ok = p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ")
    return ok, p.returncode, p.stderr.strip()[-300:]


# ---------------------------------------------------------------- one format

def fuzz_format(fmt, args, scratch):
    seed_list = seeds(fmt, scratch)
    if not seed_list:
        raise SystemExit(f"no seeds for {fmt}")
    others = [d for s in seed_list for _, d, m in s if m]
    stats = {"format": fmt, "cases": 0, "ran": 0, "read": 0, "refused": 0, "unclear": 0,
             "crashes_ferry": 0, "crashes_libhdf5": 0, "hangs": 0, "hangs_libhdf5": 0, "slow": 0, "peak_rss_mib": 0,
             "isolation_checked": 0, "isolation_failed": 0, "seconds": 0.0,
             # Where the time goes: making cases (Python), cases the child answered, cases that
             # crashed or hung (the time limit and a fresh child), and how many children ran.
             "mutate_seconds": 0.0, "child_seconds": 0.0, "lost_seconds": 0.0, "children": 0,
             # [case, peak RSS before, after (MiB), outcome] for cases that raised it by MEMORY_STEP.
             "memory_cases": []}
    unclear_examples = {}
    start = time.monotonic()
    log = scratch / f"{fmt}.log"
    harness = None
    case_ids = [args.case] if args.case is not None else range(args.cases)
    crashes_seen = {}
    for case_id in case_ids:
        rng = random.Random(f"{args.seed}-{fmt}-{case_id}")
        seed_files = seed_list[rng.randrange(len(seed_list))]
        clock = time.monotonic()
        files = mutate_case(fmt, seed_files, rng, others, scratch)
        stats["mutate_seconds"] += time.monotonic() - clock
        clock = time.monotonic()
        if harness is None:
            harness = Harness(fmt, log)
            stats["children"] += 1
        verdict = None
        case_id_saved = None
        try:
            before_kib = harness.peak_kib
            outcome, message = harness.send(case_id, files, args.timeout)
            stats["child_seconds"] += time.monotonic() - clock
            stats[outcome] = stats.get(outcome, 0) + 1
            if outcome == "unclear":
                unclear_examples.setdefault(message[:80], case_id)
            # Which case makes the child's peak memory: the high-water mark read after every
            # case; a case that raised it by more than MEMORY_STEP is saved with the figures.
            after_kib = harness.memory()
            if after_kib - before_kib > MEMORY_STEP >> 10 and after_kib > MEMORY_FLOOR >> 10:
                stats["memory_cases"].append([case_id, before_kib // 1024, after_kib // 1024, outcome])
                if len(stats["memory_cases"]) <= 30:
                    folder = save_case(args.keep, fmt, f"{case_id}-memory", files,
                                       f"memory: peak RSS {before_kib // 1024} -> {after_kib // 1024} MiB ({outcome})", message)
                    print(f"{fmt} case {case_id}: peak RSS {before_kib // 1024} -> {after_kib // 1024} MiB ({outcome}) -> {folder}", flush=True)
        except TimeoutError:
            harness.stop(abort=True)
            harness_peak = harness.peak_kib
            stats["peak_rss_mib"] = max(stats["peak_rss_mib"], harness.peak_kib // 1024)
            harness = None
            stats["lost_seconds"] += time.monotonic() - clock
            tail = log.read_bytes()[-6000:].decode(errors="replace")
            kind = where_it_crashed(tail)
            # A case of Ferry's past the limit is run again alone with SLOW_LIMIT: one that then
            # answers is slow (a model under the fuzz target's run limit whose reference kernels
            # take a second), not a hang, and is kept apart.
            used = None
            if not (fmt in HDF5_FORMATS and kind == "libhdf5"):
                used = cpu_of_a_rerun(fmt, files, max(SLOW_LIMIT, 20 * args.timeout), scratch)
            if fmt in HDF5_FORMATS and kind == "libhdf5":
                stats["hangs_libhdf5"] += 1
                where = ""
            elif used is not None:
                stats["slow"] += 1
                frames, where = symbolize(tail)
                tail += "\n--- symbolized ---\n" + frames
            else:
                stats["hangs"] += 1
                frames, where = symbolize(tail)
                tail += "\n--- symbolized ---\n" + frames
            if used is not None:
                verdict = (f"slow, not a hang: {used:.2f} CPU s alone (past the {args.timeout} s limit)"
                           + (f", was at {where}" if where else ""))
                case_id_saved = f"{case_id}-slow"
            else:
                verdict = f"hang ({kind})" + (f" at {where}" if where else "") + f", child peak RSS {harness_peak // 1024} MiB"
        except Died:
            code = harness.stop()
            harness_peak = harness.peak_kib
            stats["peak_rss_mib"] = max(stats["peak_rss_mib"], harness.peak_kib // 1024)
            harness = None
            tail = log.read_bytes()[-6000:].decode(errors="replace")
            if "fatal signal" not in tail:
                # No stack printed (a handler cannot always run after memory was trashed): the
                # case once more, alone in a fresh child, for a stack to tell where it crashed.
                tail = stack_of_a_rerun(fmt, files, args.timeout, scratch) or tail
            stats["lost_seconds"] += time.monotonic() - clock
            kind = where_it_crashed(tail)
            if kind == "libhdf5":
                stats["crashes_libhdf5"] += 1
            else:
                stats["crashes_ferry"] += 1
            frames, where = symbolize(tail) if kind == "ferry" else ("", "")
            verdict = f"crash ({kind}), exit {code}" + (f" at {where}" if where else "") + f", child peak RSS {harness_peak // 1024} MiB"
            tail += "\n--- symbolized ---\n" + frames
            crashes_seen.setdefault(verdict, case_id)
        stats["cases"] += 1
        if verdict:
            folder = save_case(args.keep, fmt, case_id_saved or case_id, files, verdict, tail)
            print(f"{fmt} case {case_id}: {verdict} -> {folder}", flush=True)
            if fmt in HDF5_FORMATS and stats["isolation_checked"] < args.verify and case_id_saved is None:
                ok, code, err = through_the_cli(folder, files, args.timeout)
                stats["isolation_checked"] += 1
                if not ok:
                    stats["isolation_failed"] += 1
                    print(f"  ferry inspect did not refuse it cleanly: exit {code}: {err}", flush=True)
        elif harness is not None and case_id % 2000 == 1999:
            # A fresh child now and then: a slow leak shows as peak memory, not as a crash.
            harness.stop()
            stats["peak_rss_mib"] = max(stats["peak_rss_mib"], harness.peak_kib // 1024)
            harness = None
        if args.progress and stats["cases"] % args.progress == 0:
            rate = stats["cases"] / (time.monotonic() - start)
            print(f"  {fmt}: {stats['cases']} cases, {rate:.0f}/s, {stats['crashes_ferry']} ferry crashes, "
                  f"{stats['crashes_libhdf5']} libhdf5 crashes, {stats['hangs']} hangs", flush=True)
        if args.max_seconds and time.monotonic() - start > args.max_seconds:
            break
    if harness is not None:
        harness.stop()
        stats["peak_rss_mib"] = max(stats["peak_rss_mib"], harness.peak_kib // 1024)
    stats["seconds"] = round(time.monotonic() - start, 1)
    for key in ("mutate_seconds", "child_seconds", "lost_seconds"):
        stats[key] = round(stats[key], 1)
    stats["unclear_examples"] = unclear_examples
    stats["crash_signatures"] = crashes_seen
    return stats


def replay(root, args):
    """Each saved case once more, in a fresh child: prints how it ends now."""
    failed = 0
    for folder in sorted(p for p in root.glob("*/case*") if p.is_dir()):
        fmt = folder.parent.name
        names = [n.strip() for n in (folder / "files.txt").read_text().split()] if (folder / "files.txt").exists() else None
        files = [(n, (folder / n).read_bytes()) for n in names]
        log = pathlib.Path(tempfile.mkstemp(suffix=".log")[1])
        harness = Harness(fmt, log)
        try:
            outcome, message = harness.send(0, files, args.timeout)
            harness.stop()
        except TimeoutError:
            harness.stop(abort=True)
            outcome, message = "hang", symbolize(log.read_text(errors="replace"))[1]
            failed += 1
        except Died:
            code = harness.stop()
            outcome, message = f"crash (exit {code})", symbolize(log.read_text(errors="replace"))[1]
            failed += 1
        log.unlink()
        print(f"{folder}: {outcome} {message[:200]}")
    return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", default="all", choices=["all"] + FORMATS)
    # A case that reads takes milliseconds (a run is bounded by the fuzz target's --run-limit);
    # libhdf5's endless loops are found about once in 150 damaged .h5 files, so the limit is
    # most of what they cost.
    parser.add_argument("--timeout", type=float, default=2, help="CPU seconds per case")
    parser.add_argument("--max-seconds", type=float, default=0, help="stop a format after this long")
    parser.add_argument("--keep", default=str(pathlib.Path(tempfile.gettempdir()) / "ferry-fuzz-cases"))
    parser.add_argument("--report", help="write the figures as JSON")
    parser.add_argument("--verify", type=int, default=50, help="crashes per HDF5 format read again with `ferry inspect`")
    parser.add_argument("--case", type=int, help="run only this case number")
    parser.add_argument("--replay", help="read again the cases saved under this folder (FORMAT/caseN/)")
    parser.add_argument("--progress", type=int, default=0, help="print a line every N cases")
    args = parser.parse_args()
    if args.replay:
        return replay(pathlib.Path(args.replay), args)
    formats = FORMATS if args.format == "all" else [args.format]
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="ferry-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    results = []
    try:
        for fmt in formats:
            stats = fuzz_format(fmt, args, scratch)
            results.append(stats)
            print(f"{fmt}: {stats['cases']} cases in {stats['seconds']} s ({stats['ran']} ran, {stats['read']} read only, "
                  f"{stats['refused']} refused with an error, {stats['unclear']} unclear errors), "
                  f"{stats['crashes_ferry']} crashes in Ferry, {stats['crashes_libhdf5']} in libhdf5 "
                  f"({stats['isolation_checked']} read again by `ferry inspect`, {stats['isolation_failed']} not refused cleanly), "
                  f"{stats['hangs']} hangs in Ferry, {stats['hangs_libhdf5']} in libhdf5, {stats['slow']} slow (not hangs), peak RSS {stats['peak_rss_mib']} MiB; "
                  f"{stats['mutate_seconds']} s making cases, {stats['child_seconds']} s in answered cases, "
                  f"{stats['lost_seconds']} s in crashed or hung ones, {stats['children']} children", flush=True)
            for case, before, after, outcome in stats["memory_cases"][:10]:
                print(f"  case {case} raised the child's peak RSS from {before} to {after} MiB ({outcome})")
            for message, case in list(stats["unclear_examples"].items())[:5]:
                print(f"  unclear error (case {case}): {message}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.report:
        pathlib.Path(args.report).write_text(json.dumps({"seed": args.seed, "ferry": FERRY, "formats": results}, indent=2) + "\n")
    bad = any(s["crashes_ferry"] or s["hangs"] or s["isolation_failed"] for s in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
