"""Issue 7's memory target on a model small enough for CI: `ferry run` on a generated ONNX model
with 44 MB of float32 weights (a 1x1 and a 3x3 stride-2 Conv, whose weights the plan packs, and a
Gemm) must add at most the weights plus 1.5x the plan's peak live intermediates, plus 6 MB (the
kernels' scratch, about 3 MB here, and page rounding), over a run of the same graph with 8
channels (`tools/run_rss.py`, GNU time's peak RSS). Holding the largest weight twice for a
moment (36 MB: packing beside the original, or reading the file in large chunks) fails; the
figures for the keras.applications models are in the README."""
import subprocess
import sys

from conftest import FERRY, ROOT


def test_run_holds_weights_once():
    command = [sys.executable, str(ROOT / "tools" / "run_rss.py"), "--ferry", FERRY, "--synthetic", "48", "--max-over", "6"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
