# The two set-up commands of the README: `make demo` and `make test`.
# Each creates .venv (CPU torch first, so pip never pulls a CUDA build) and installs the project.
VENV ?= .venv
PY := $(VENV)/bin/python
# glibc's allocator slows large batches; these gave ~1.7x at batch 128 on CPU.
export MALLOC_MMAP_MAX_ ?= 0
export MALLOC_TRIM_THRESHOLD_ ?= 68719476736

.PHONY: install demo test docs clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	# every extra, at the exact versions of constraints.txt (pyproject.toml holds the ranges)
	$(PY) -m pip install -q -e '.[train,baseline,lhotse,cluster,dev,silero,whisper,hub]' -c constraints.txt
	# Resemblyzer's pretrained speaker encoder (train --init resemblyzer); --no-deps: its
	# librosa/webrtcvad are not needed, only the weights file it ships.
	$(PY) -m pip install -q --no-deps resemblyzer==0.1.4
	# the default model's ONNX graph (Whisper blocks 0-3 + head, 51 MB) is made here, not kept in
	# git: predict's default engine then runs onnxruntime on it (about 30 s to export)
	$(VENV)/bin/copypaste-ser export src/copypaste_ser/inference/pretrained/default --onnx src/copypaste_ser/inference/pretrained/default/model.onnx --force
	# silero VAD's ONNX model and MIT licence, copied from its wheel (which depends on torch) into
	# the package, so a wheel built now predicts with silero on onnxruntime alone
	$(PY) -c "from copypaste_ser.inference.vad import vendor_silero; vendor_silero()"
	touch $@

demo: install
	$(VENV)/bin/copypaste-ser demo

test: install
	$(PY) -m pytest -q

docs: install  # the API reference from the docstrings, into docs/api (not kept in git)
	$(VENV)/bin/pdoc copypaste_ser -o docs/api

clean:
	rm -rf $(VENV) demo-out .pytest_cache .hypothesis
