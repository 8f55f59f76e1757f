# rnnq entry points. `make demo` and `make test` work on a fresh machine with python3 >= 3.11
# and a C compiler: they create .venv/ and install rnnq (editable) with what the tests need.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXAMPLE := examples/japanese_vowels
OUT := out

.PHONY: setup demo test test-fast lint clean

$(BIN)/.installed: pyproject.toml requirements-dev.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev]' -r requirements-dev.txt
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/rnnq compile $(EXAMPLE)/model.onnx --calib $(EXAMPLE)/calib.npz \
	    --target generic-c99 --prefix jv -o $(OUT)/japanese_vowels
	$(BIN)/rnnq validate $(OUT)/japanese_vowels --data $(EXAMPLE)/test.npz \
	    --json $(OUT)/japanese_vowels_report.json

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

lint: setup
	$(BIN)/ruff check rnnq tests examples tools

clean:
	rm -rf $(OUT) dist build
