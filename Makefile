# Two set-up commands: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo

.PHONY: demo test test-fast bench lint system-deps clean

$(BIN)/conflictlens: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# Debian packages the tests and benchmarks use (goaccess as the speed peer, logrotate for rotation tests).
system-deps:
	@scripts/install-system-deps.sh

demo: $(BIN)/conflictlens
	mkdir -p $(DEMO)
	$(BIN)/conflictlens sample --format nginx-combined --lines 200000 --out $(DEMO)/access.log
	$(BIN)/conflictlens ingest --db $(DEMO)/conflictlens.duckdb $(DEMO)/access.log sample_logs/*.log
	$(BIN)/conflictlens clusters --db $(DEMO)/conflictlens.duckdb --limit 15

test: $(BIN)/conflictlens system-deps
	$(BIN)/python -m pytest

test-fast: $(BIN)/conflictlens
	$(BIN)/python -m pytest -m "not slow"

bench: $(BIN)/conflictlens system-deps
	$(BIN)/python bench/bench_ingest.py

lint: $(BIN)/conflictlens
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(DEMO) bench/out .pytest_cache
