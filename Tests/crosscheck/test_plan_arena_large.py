"""Issue 7's memory budget inside the plan: the arena (intermediates and each step's kernel
scratch) of the keras.applications models at 96x96 stays within 1.5x their largest set of live
intermediates, where kernel scratch of a fixed size would make a small image's arena grow past
it (ResNet50's was 1.8x before the scratch room counted only the space above the live blocks as
able to grow). Runs under `make test-large` (fixtures-large/)."""
import json

import pytest

from conftest import KERAS_FIXTURES, ferry

APPS = ["mobilenetv2", "resnet50", "vgg16", "efficientnetb0"]


@pytest.mark.parametrize("app", APPS)
def test_arena_within_one_and_a_half_live_sets(app):
    model = KERAS_FIXTURES / app / "keras3.h5"
    if not model.exists():
        pytest.skip(f"{model} is made by `make fixtures-large`")
    bench = json.loads(ferry("bench", model, "--json", "--runs", "1", "--warmup", "0", "--threads", "2", check=True).stdout)
    # The arena's blocks are 64-byte aligned: allow one alignment per block of the largest step.
    assert bench["arenaBytes"] <= 1.5 * bench["peakLiveBytes"] + 4096, bench
