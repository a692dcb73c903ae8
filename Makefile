# One-command set-up, demo and tests. Every target is idempotent: a second run does no work.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.fedfleet-installed
EXTRAS := dev,privacy,traffic,ray

.PHONY: setup data demo test test-slow lint bench clean

setup: $(STAMP)

$(BIN)/python:
	@echo "==> creating virtualenv in $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch is pinned and installed first: the pin takes the local CPU wheel, never a CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	@echo "==> installing torch==2.13.0 (CPU), then fedfleet[$(EXTRAS)]"
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]'
	@touch $@
	@echo "==> environment ready in $(VENV)"

data: setup
	@bash scripts/get-data.sh $(BIN)/fedfleet

demo: data
	$(BIN)/fedfleet run configs/default.yaml

test: data
	$(BIN)/python -m pytest

test-slow: data
	$(BIN)/python -m pytest -m slow

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: data
	@for script in benchmarks/*.py; do echo "==> $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
