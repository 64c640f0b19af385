# Two commands for a fresh machine with Python 3.11:  `make demo` (the main job) and `make test`.
# Both create a local virtual environment in .venv and install genomorph into it first.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.genomorph-installed
OUT := out

# The main job: NASH hill climbing (paper 002) on the embedded digits data, from
# examples/vanilla.genome fitted to 1x8x8 inputs and 10 classes. About a minute on 2 cores;
# the run directory (runs/nash-digits-TIME/) ends with summary.json, best.genome and plots.
RUN ?=

.PHONY: demo test test-all bench lint clean

demo: $(STAMP)
	$(BIN)/genomorph search --strategy nash --dataset digits $(if $(RUN),--out $(RUN))

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --durations=15

# also the tests marked slow
test-all: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m ''

bench: $(STAMP)
	$(BIN)/python bench/bench_compile.py
	$(BIN)/python bench/bench_train_step.py
	$(BIN)/python bench/bench_morph.py
	$(BIN)/python bench/bench_search.py
	$(BIN)/python bench/bench_dashboard.py
	$(BIN)/python bench/bench_export.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check --extend-exclude '*.md' .

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the dependencies change; the install is editable, so code edits need none.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

clean:
	rm -rf $(OUT) build dist .pytest_cache
