# rnnq entry points. `make demo` and `make test` work on a fresh machine with python3 >= 3.11
# and a C compiler: they create .venv/ and install rnnq (editable) with what they need.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXAMPLE := examples/japanese_vowels
OUT := out

.PHONY: setup setup-dev demo test test-all bench bench-tflite bench-accuracy lint clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -e .
	touch $@

$(BIN)/.installed-dev: $(BIN)/.installed requirements-dev.txt
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

setup: $(BIN)/.installed
setup-dev: $(BIN)/.installed-dev

demo: setup
	$(BIN)/rnnq compile $(EXAMPLE)/model.onnx --calib $(EXAMPLE)/calib.npz \
	    --target generic-c99 --prefix jv -o $(OUT)/japanese_vowels
	$(BIN)/rnnq validate $(OUT)/japanese_vowels --data $(EXAMPLE)/test.npz \
	    --json $(OUT)/japanese_vowels_report.json

test: setup-dev
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

# Every emulated board, RISC-V included (needs gcc-riscv64-unknown-elf,
# picolibc-riscv64-unknown-elf and qemu-system-misc besides what .ci/run installs).
test-all: setup-dev
	RNNQ_TEST_ALL=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests

# Instruction counts on an emulated Cortex-M4 (bench/README.md is regenerated).
bench: setup-dev
	$(BIN)/python bench/run.py

# accuracy of the examples: rnnq (C, .tflite) against float and onnxruntime's quantisers
bench-accuracy: setup-dev
	$(BIN)/python bench/accuracy.py

# rnnq's .tflite against TensorFlow's converter in LiteRT: size, latency, accuracy
# (bench/README.md's tflite section is regenerated).
bench-tflite: setup-dev
	$(BIN)/python bench/tflite_bench.py

lint: setup-dev
	$(BIN)/ruff check rnnq tests examples tools

clean:
	rm -rf $(OUT) dist build
