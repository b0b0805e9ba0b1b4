"""Issue 8's "Done when", fixture by fixture: every committed fixture the importers read, in every
export direction between Keras and Caffe (and through ONNX, see below), is either converted and
checked in the target (the pass lists of test_keras_export.py and test_caffe_export.py) or fails
cleanly: exit status 2, one `error:` line naming the written file, the layer (with its type) or
input at fault and what the target cannot express, and no file left behind. A new fixture thus lands in
one group or the other; test_unexpressible_* in the two files pin the layer and reason of the
ones that matter most. ONNX as the target is checked by test_keras_fixtures.py and
test_caffe_fixtures.py (every fixture is exported to ONNX there); ONNX as the source by the
Keras -> ONNX -> Keras/Caffe tests."""
import json
import re

import pytest

from conftest import KERAS_FIXTURES, ROOT, ferry
from export_fixtures import CAFFE_TO_KERAS, KERAS3_ONLY, KERAS_TO_KERAS
from test_caffe_export import KERAS_TO_CAFFE, UNEXPRESSIBLE as CAFFE_UNEXPRESSIBLE

CAFFE_FIXTURES = ROOT / "fixtures" / "caffe"


def readable(folder):
    """Fixture names whose manifest says the importer reads them."""
    return sorted(p.parent.name for p in folder.glob("*/manifest.json")
                  if json.loads(p.read_text()).get("expect", "ok") == "ok")


KERAS = readable(KERAS_FIXTURES)
CAFFE = readable(CAFFE_FIXTURES)
CAFFE_TO_CAFFE = [n for n in CAFFE if f"caffe/{n}" not in CAFFE_UNEXPRESSIBLE]

DIRECTIONS = {
    # (source kind, target suffix): the fixtures converted and checked in the target
    ("keras", ".h5"): KERAS_TO_KERAS + sorted(KERAS3_ONLY),
    ("keras", ".prototxt"): KERAS_TO_CAFFE,
    ("caffe", ".h5"): CAFFE_TO_KERAS,
    ("caffe", ".prototxt"): CAFFE_TO_CAFFE,
}
TARGET = {".h5": "Keras", ".prototxt": "Caffe"}


def refused():
    cases = []
    for (kind, suffix), converted in DIRECTIONS.items():
        for name in (KERAS if kind == "keras" else CAFFE):
            if name not in converted:
                cases.append(pytest.param(kind, name, suffix, id=f"{kind}-{name}-to-{TARGET[suffix]}"))
    return cases


@pytest.mark.parametrize("kind,name,suffix", refused())
def test_every_other_fixture_fails_cleanly(kind, name, suffix, tmp_path):
    source = KERAS_FIXTURES / name / "keras3.h5" if kind == "keras" else CAFFE_FIXTURES / name / "net.prototxt"
    if kind == "keras" and not source.exists():
        source = KERAS_FIXTURES / name / "keras2.h5"
    result = ferry("convert", source, tmp_path / f"out{suffix}")
    assert result.returncode == 2, f"converted, but not in the list of checked conversions:\n{result.stdout}"
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    # The file, then the layer (with its type) or the input at fault, then why in the target's terms.
    assert re.match(rf"^error: {re.escape(str(tmp_path))}/out\{suffix}: \S.*: ", errors[0]), errors[0]
    assert f"{TARGET[suffix]} cannot express" in errors[0] or f"{TARGET[suffix]} inputs" in errors[0], errors[0]
    assert not list(tmp_path.iterdir()), "a failed export leaves no file"


def test_every_readable_fixture_is_in_a_group():
    """The two groups cover every readable fixture in every direction (no fixture is skipped)."""
    total = sum(len(KERAS if kind == "keras" else CAFFE) for kind, _ in DIRECTIONS)
    assert len(refused()) + sum(len(v) for v in DIRECTIONS.values()) == total
    assert all(set(v) <= set(KERAS if kind == "keras" else CAFFE) for (kind, _), v in DIRECTIONS.items())
