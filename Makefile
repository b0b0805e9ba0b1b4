# Ferry: the two commands a fresh machine needs are `make demo` and `make test`.
SHELL := /bin/bash
PY ?= .venv/bin/python
DEMO_MODEL := fixtures/keras/cnn_flatten/keras3.h5
DEMO_DIR := fixtures/keras/cnn_flatten
RELEASE := .build/release/ferry

.PHONY: setup build release test test-swift test-crosscheck test-onnx-export test-export-keras demo protos fixtures fixtures-caffe clean

setup:
	@bash tools/setup.sh

build: setup
	swift build

release: setup
	swift build -c release

# Every test: Swift unit and end-to-end tests, then the cross-checks against Keras references,
# the ONNX checker and onnxruntime (which need the Python venv).
test: build test-swift test-crosscheck

test-swift:
	swift test

test-crosscheck:
	FERRY=.build/debug/ferry $(PY) -m pytest -q Tests/crosscheck
	$(PY) tools/crosscheck_onnx.py --ferry .build/debug/ferry

# The exporter on the ONNX node tests: every passing case re-exported, checked, run in onnxruntime.
test-onnx-export: build
	$(PY) tools/conformance_export.py --ferry .build/debug/ferry

# keras.applications models (weights=None, randomized BatchNorm statistics) against Keras:
# too big to commit, so `make fixtures-large` builds them into fixtures-large/ first.
test-large: release
	@test -d fixtures-large || { echo "fixtures-large/ is missing: run 'make fixtures-large' first"; exit 2; }
	FERRY=$(RELEASE) FERRY_KERAS_FIXTURES=fixtures-large $(PY) -m pytest -q -rs Tests/crosscheck/test_keras_fixtures.py -k "run_matches or onnx_export"
	FERRY=$(RELEASE) FERRY_KERAS_FIXTURES=fixtures-large $(PY) -m pytest -q -rs Tests/crosscheck/test_optimizer_claims.py Tests/crosscheck/test_plan_arena_large.py
	FERRY=$(RELEASE) .venv-fixtures/bin/python tools/crosscheck_export.py
	# Issue 5's memory claim: converting VGG16 both ways holds at most 2x its weights.
	$(PY) tools/convert_rss.py --ferry $(RELEASE) --max-ratio 2 fixtures-large/vgg16/keras3.h5 $(wildcard bench-models/vgg16/keras3.h5)
	$(PY) tools/convert_rss.py --ferry $(RELEASE) --max-ratio 2 --external-data fixtures-large/vgg16/keras3.h5
	# A 2.25 GiB ONNX model written as X.onnx + X.onnx.data and read back (writes ~7.5 GB to /tmp).
	$(PY) tools/large_external_data.py --ferry $(RELEASE)

# Keras export in real Keras: every fixture Ferry writes as Keras, loaded with tf_keras 2.21 and
# Keras 3.15 (TensorFlow, too heavy for CI: .venv-fixtures) and compared with its reference.
test-export-keras: build
	bash tools/setup.sh --fixtures
	FERRY=.build/debug/ferry .venv-fixtures/bin/python tools/crosscheck_export.py

fixtures-large:
	bash tools/setup.sh --fixtures
	.venv-fixtures/bin/python tools/make_fixtures.py --apps --keras2

demo: release
	@mkdir -p out
	@echo "== ferry inspect $(DEMO_MODEL)"
	@$(RELEASE) inspect $(DEMO_MODEL)
	@echo; echo "== ferry convert $(DEMO_MODEL) out/cnn_flatten.onnx"
	@$(RELEASE) convert --force $(DEMO_MODEL) out/cnn_flatten.onnx
	@echo; echo "== ferry run $(DEMO_MODEL) --input $(DEMO_DIR)/input_0.npy --output out/ferry_output.npy"
	@$(RELEASE) run $(DEMO_MODEL) --input $(DEMO_DIR)/input_0.npy --output out/ferry_output.npy --force
	@echo; echo "== ferry's output vs Keras's own predict()"
	@$(PY) tools/compare_npy.py out/ferry_output.npy $(DEMO_DIR)/keras3_output_0.npy
	@echo; echo "== the exported ONNX in onnxruntime vs Keras (and the ONNX checker)"
	@$(PY) tools/onnx_crosscheck.py out/cnn_flatten.onnx --input image=$(DEMO_DIR)/input_0.npy --expect softmax=$(DEMO_DIR)/keras3_output_0.npy --save-outputs out/ort
	@echo; echo "== ferry vs onnxruntime on the exported file"
	@$(PY) tools/compare_npy.py out/ferry_output.npy out/ort/softmax.npy

# Regenerate the committed .pb.swift from schemas/ (needs protoc; builds protoc-gen-swift once).
protos:
	bash tools/gen-protos.sh

# Regenerate the Keras fixtures (needs TensorFlow, tf_keras and Keras 3 in .venv-fixtures).
fixtures:
	bash tools/setup.sh --fixtures
	.venv-fixtures/bin/python tools/make_fixtures.py

# Regenerate the Caffe fixtures (OpenCV 4.x's Caffe importer as the reference; needs protoc).
fixtures-caffe:
	bash tools/setup.sh --fixtures
	.venv-fixtures/bin/pip install -q --disable-pip-version-check --no-deps -r tools/requirements-caffe-fixtures.txt
	.venv-fixtures/bin/python tools/make_caffe_fixtures.py

clean:
	rm -rf .build out
