#!/usr/bin/env bash
# Installs what Ferry's build and tests need on a Debian 12 machine that has Swift:
#   apt: libhdf5-dev, libopenblas-dev, pkg-config, graphviz (`dot`, for `ferry graph` SVG),
#   libonnx-testdata (the ONNX backend node tests, Ferry's ONNX conformance suite)
#   a Python venv in .venv from the pinned tools/requirements.txt (numpy, h5py, onnx,
#   onnxruntime, OpenCV), used for cross-checks.
# Quick and quiet when everything is already there. `--fixtures` also makes .venv-fixtures
# (TensorFlow, tf_keras, Keras 3) for tools/make_fixtures.py; the tests never need it.
# `--tf2onnx` makes .venv-tf2onnx (tf2onnx and its TensorFlow) for tools/bench_tf2onnx.py.
set -euo pipefail
cd "$(dirname "$0")/.."

want_fixtures=0
want_tf2onnx=0
for arg in "$@"; do
    case "$arg" in
        --fixtures) want_fixtures=1 ;;
        --tf2onnx) want_tf2onnx=1 ;;
        *) echo "usage: tools/setup.sh [--fixtures] [--tf2onnx]" >&2; exit 2 ;;
    esac
done

log() { echo "setup: $*" >&2; }

missing=()
for pkg in libhdf5-dev libopenblas-dev pkg-config graphviz libonnx-testdata; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} (apt)"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# A venv whose pins match requirements.txt is reused; the stamp records what it was made from.
make_venv() {
    local dir=$1 req=$2
    local stamp="$dir/.ferry-requirements"
    if [ -x "$dir/bin/python" ] && [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
        return 0
    fi
    log "creating $dir from $req (pip)"
    [ -x "$dir/bin/python" ] || python3 -m venv "$dir"
    # Lines marked `# no-deps` are installed without the dependencies their wheels declare.
    "$dir/bin/pip" install -q --disable-pip-version-check -r <(grep -v -E '^[^#]+# no-deps' "$req")
    local nodeps
    nodeps=$({ grep -E '^[^#]+# no-deps' "$req" || true; } | sed 's/#.*//' | tr -s ' \n' ' ')
    if [ -n "${nodeps// /}" ]; then
        # shellcheck disable=SC2086
        "$dir/bin/pip" install -q --disable-pip-version-check --no-deps $nodeps
    fi
    cp "$req" "$stamp"
}

make_venv .venv tools/requirements.txt
if [ $want_fixtures -eq 1 ]; then
    make_venv .venv-fixtures tools/requirements-fixtures.txt
fi
if [ $want_tf2onnx -eq 1 ]; then
    make_venv .venv-tf2onnx tools/requirements-tf2onnx.txt
fi
