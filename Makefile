# alpsdx: `make run` sets everything up and starts the main job; `make test` runs the suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell (cat pyproject.toml; $(PY) --version) | sha1sum | cut -c1-12)
DEVSTAMP := $(STAMP)-dev

.PHONY: run test install install-dev lint typecheck contracts pytest bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(DEVSTAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP) $@

install: $(STAMP)
install-dev: $(DEVSTAMP)

run: install
	$(BIN)/alpsdx demo --host 127.0.0.1 --port 8000

lint: install-dev
	$(BIN)/ruff check src tests benchmarks

typecheck: install-dev
	$(BIN)/mypy --strict src/alpsdx/knowledge src/alpsdx/errors.py src/alpsdx/model.py src/alpsdx/units.py src/alpsdx/criteria src/alpsdx/classify.py src/alpsdx/engine.py

contracts: install-dev
	$(BIN)/lint-imports

pytest: install-dev
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

test: lint typecheck contracts pytest

bench: install-dev
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
