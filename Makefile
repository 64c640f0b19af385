# Two commands for a fresh machine with Python 3.11:  `make demo` (the main job) and `make test`.
# Both create a local virtual environment in .venv and install genomorph into it first.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.genomorph-installed
OUT := out

# The main job. Until the search engine lands it describes and draws an example genome;
# change these lines (and only these) to make the demo run a search instead.
DEMO_GENOME ?= examples/resnet18_cifar.genome
DEMO_NAME := $(basename $(notdir $(DEMO_GENOME)))

.PHONY: demo test test-all bench lint clean

demo: $(STAMP)
	@mkdir -p $(OUT)
	$(BIN)/genomorph validate examples/*.genome
	$(BIN)/genomorph info $(DEMO_GENOME)
	$(BIN)/genomorph render $(DEMO_GENOME) -o $(OUT)/$(DEMO_NAME).dot
	$(BIN)/genomorph render $(DEMO_GENOME) -o $(OUT)/$(DEMO_NAME).mmd
	$(BIN)/genomorph render $(DEMO_GENOME) -o $(OUT)/$(DEMO_NAME).json
	@if command -v dot >/dev/null 2>&1; then \
		$(BIN)/genomorph render $(DEMO_GENOME) -o $(OUT)/$(DEMO_NAME).svg; \
	else \
		echo "(Graphviz not installed: skipping $(OUT)/$(DEMO_NAME).svg; apt-get install graphviz)"; \
	fi

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

# also the tests marked slow
test-all: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m ''

bench: $(STAMP)
	$(BIN)/python bench/bench_compile.py
	$(BIN)/python bench/bench_train_step.py

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
