"""Same input, same thread count: `ferry run` writes bit-identical outputs run after run,
whatever runtime `ferry run` uses (the outputs are compared as bytes, not within a tolerance).

The models are chosen so that together they reach every kernel the plan runtime picks for any
committed fixture (the names `ferry bench --json` reports: GEMM and MatMul, every convolution form
with depthwise, every pooling, softmax by rows and strided, every broadcast of the binary kernels,
concat, transpose, LSTM, GRU and SimpleRNN both directions) and every op family the plan leaves
to the reference kernels (Resize; the reductions; Gather; ConvTranspose; 3-D convolution
and pooling). test_the_models_reach_every_kernel checks that claim against `ferry bench`."""
import json

import pytest

from conftest import ROOT, ferry

K = ROOT / "fixtures/keras"
C = ROOT / "fixtures/caffe"
MODELS = [
    K / "mlp/keras3.h5",                     # gemm.sgemm, softmax.rows
    K / "conv2d_family/keras3.h5",           # conv.depthwise(-interleaved), conv.im2col-packed(-narrow), pool.global-max
    K / "conv1d_family/keras3.h5",
    K / "conv3d_family/keras3.h5",           # 3-D Conv, MaxPool, AveragePool (reference)
    K / "conv_transpose/keras3.h5",          # ConvTranspose (reference)
    K / "norm_family/keras3.h5",
    K / "norm_axes/keras3.h5",               # ReduceMean, binary.per-channel / per-row
    K / "attention/keras3.h5",               # matmul.sgemm, softmax.rows, ReduceSum
    K / "multi_head_attention/keras3.h5",
    K / "activation_layers/keras3.h5",       # softmax.strided
    K / "recurrent_family/keras3.h5",        # recurrent.lstm, recurrent.gru, recurrent.rnn
    K / "bidirectional_family/keras3.h5",    # the same, both directions side by side; ReduceMean, ReduceSum
    K / "resampling/keras3.h5",              # Resize
    K / "embedding/keras3.h5",               # Gather
    C / "inception/net.prototxt",            # concat.copy, pool.max, conv.1x1-packed-narrow
    C / "resnet_small/net.prototxt",         # conv.1x1-packed, conv.im2col-packed
    C / "resnet_bottleneck/net.prototxt",
    C / "mobilenet_block/net.prototxt",      # conv.depthwise-interleaved
    C / "pooling/net.prototxt",              # pool.average, pool.global-average, pool.global-max
    C / "shapes/net.prototxt",               # matmul.sgemm, softmax.strided, transpose.copy
    C / "interp/net.prototxt",               # Resize
    C / "reduction/net.prototxt",            # ReduceL1, ReduceSumSquare, ...
    C / "lrn/net.prototxt",
]

# Every kernel `ferry bench --json` named for a committed fixture (all of them, 2026-11-27), at the
# batch of the fixture's inputs (2) and at batch 1 (where a Gemm streams its weights: gemm.row).
# A packed kernel's narrow and wide layouts count as one (which one a shape gets is a cost
# estimate the runtime tunes).
KERNELS = {
    "activation", "alias", "binary.per-channel", "binary.per-row", "binary.same-shape", "binary.scalar",
    "concat.copy", "conv.1x1-packed", "conv.depthwise", "conv.depthwise-interleaved", "conv.im2col-packed",
    "gemm.row", "gemm.sgemm", "matmul.sgemm", "pool.average", "pool.global-average",
    "pool.global-max", "pool.max", "reference", "softmax.rows", "softmax.strided", "transpose.copy",
    "recurrent.lstm", "recurrent.gru", "recurrent.rnn",
}
REFERENCE_OPS = {"Resize", "ReduceMean", "ReduceSum", "ReduceL1", "ReduceSumSquare",
                 "Gather", "ConvTranspose"}


def _id(model):
    return f"{model.parent.parent.name}-{model.parent.name}"


def _inputs(model, batch, folder):
    """The fixture's inputs (batch 2), or their first rows (batch 1)."""
    files = sorted(model.parent.glob("input_*.npy"))
    if batch == 1:
        import numpy as np
        folder.mkdir()
        for f in files:
            np.save(folder / f.name, np.load(f)[:1])
        files = [folder / f.name for f in files]
    return [a for f in files for a in ("--input", f)]


# Batch 1 on the Dense models: a batch-1 Gemm takes another kernel (gemm.row), split by columns.
BATCH_ONE = [K / "mlp/keras3.h5", K / "cnn_flatten/keras3.h5"]
# 4 threads on the depthwise models: the depthwise kernel's stores spilling into another thread's
# channel once made conv2d_family differ now and then (fixed in d66f5fc).
CASES = ([(m, t, 2) for m in MODELS for t in (1, 2)] + [(m, t, 1) for m in BATCH_ONE for t in (1, 2)]
         + [(K / "conv2d_family/keras3.h5", 4, 2), (C / "mobilenet_block/net.prototxt", 4, 2)])


@pytest.mark.parametrize("model,threads,batch", CASES, ids=[f"{_id(m)}-{t}threads-batch{b}" for m, t, b in CASES])
def test_runs_are_bit_identical(model, threads, batch, tmp_path):
    inputs = _inputs(model, batch, tmp_path / "inputs")
    outputs = []
    for k in range(3):
        folder = tmp_path / f"run{k}"
        ferry("run", model, *inputs, "--output-dir", folder, "--threads", threads, check=True)
        outputs.append({f.name: f.read_bytes() for f in sorted(folder.glob("*.npy"))})
    assert outputs[0], "no outputs written"
    assert outputs[1] == outputs[0] and outputs[2] == outputs[0]


def test_the_models_reach_every_kernel():
    kernels, ops = set(), set()
    for model, batch in [(m, 2) for m in MODELS] + [(m, 1) for m in BATCH_ONE]:
        bench = ferry("bench", model, "--runs", "1", "--warmup", "0", "--json", "--batch", batch, check=True)
        kernels |= {k.removesuffix("-narrow") for k in json.loads(bench.stdout)["kernels"]}
        ops |= {o["op"] for o in json.loads(ferry("inspect", model, "--json", check=True).stdout)["ops"]}
    assert KERNELS <= kernels, f"not reached: {sorted(KERNELS - kernels)}"
    assert REFERENCE_OPS <= ops, f"not reached: {sorted(REFERENCE_OPS - ops)}"
