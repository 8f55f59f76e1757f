# rnnq entry points. `make demo` and `make test` work on a fresh machine with python3 >= 3.11
# and a C compiler: they create .venv/ and install rnnq (editable) with what they need.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXAMPLE := examples/japanese_vowels
OUT := out

.PHONY: setup setup-dev demo test test-all bench bench-tflite bench-accuracy bench-host bench-tooling bench-memory bench-helium lint clean

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

# One pytest worker per CPU (pytest-xdist), a test file's tests on one worker (their
# module fixtures are built once), files handed out in collection order, the slowest first
# (tests/conftest.py SLOW_FIRST; xdist would otherwise reorder them by test count);
# TEST_JOBS=0 runs them in this process. The 15 slowest tests and files are listed at the end
# (what to look at when the suite nears CI's 20-minute budget).
TEST_JOBS ?= auto
PYTEST = $(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_JOBS) --dist loadfile \
	--no-loadscope-reorder --durations=15

test: setup-dev
	$(PYTEST) tests

# Every emulated board, RISC-V included (needs gcc-riscv64-unknown-elf,
# picolibc-riscv64-unknown-elf and qemu-system-misc besides what .ci/run installs).
test-all: setup-dev
	RNNQ_TEST_ALL=1 $(PYTEST) tests

# Instruction counts on an emulated Cortex-M4 (bench/README.md is regenerated).
bench: setup-dev
	$(BIN)/python bench/run.py

# accuracy of the examples: rnnq (C, .tflite) against float, onnxruntime's quantisers and TF's
# converter (bench/tf_converter.json, from tools/tf_converter_accuracy.py); README.md's table rewritten
bench-accuracy: setup-dev
	$(BIN)/python bench/accuracy.py

# rnnq's .tflite against TensorFlow's converter in LiteRT: size, latency, accuracy
# (bench/README.md's tflite section is regenerated).
bench-tflite: setup-dev
	$(BIN)/python bench/tflite_bench.py

# rnnq's C on this machine against onnxruntime float and LiteRT, per sequence
# (bench/README.md's host section is regenerated).
bench-host: setup-dev
	$(BIN)/python bench/host.py

# rnnq compile / validate wall time on a 100k-parameter LSTM (bench/README.md is regenerated)
bench-tooling: setup-dev
	$(BIN)/python bench/tooling.py

# RAM of rnnq's Cortex-M4 build against TensorFlow Lite Micro's arena for the bench LSTMs
# (bench/README.md's memory section is regenerated).
bench-memory: setup-dev
	$(BIN)/python bench/memory.py

# Helium (MVE) kernels against the M4's DSP kernels on an emulated Cortex-M55, QEMU counts
# (bench/README.md's helium section is regenerated).
bench-helium: setup-dev
	$(BIN)/python bench/helium.py

# Differential fuzzing (tools/fuzz.py, tests/fuzz/): FUZZ_N random LSTM/GRU/RNN models from
# seed FUZZ_START on, each with extreme inputs, through rnnq's float reference vs onnxruntime,
# the host C (ASan/UBSan) vs the integer simulator and the .tflite in LiteRT vs its simulator
# profile, FUZZ_JOBS at a time. A failure prints the command that reruns that seed; CI=true makes
# a missing tool a failure. A fixed-seed slice runs in `make test` (tests/fuzz/).
FUZZ_N ?= 200
FUZZ_START ?= 0
FUZZ_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
.PHONY: fuzz
fuzz: setup-dev
	$(BIN)/python tools/fuzz.py --start $(FUZZ_START) --n $(FUZZ_N) --jobs $(FUZZ_JOBS)

# Hostile inputs (tests/hostile): every case through the command line in its own process under a
# memory limit and a timeout, every file it opens traced; -v lists each case.
.PHONY: hostile reliability
hostile: setup-dev
	$(BIN)/python -m tests.hostile.run $(OUT)/hostile -v

# The README's "Reliability" figures: `make fuzz` and `make hostile` measured and written there.
reliability: setup-dev
	$(BIN)/python tools/reliability.py --fuzz-n $(FUZZ_N) --jobs $(FUZZ_JOBS)

lint: setup-dev
	$(BIN)/ruff check rnnq tests examples tools

clean:
	rm -rf $(OUT) dist build
