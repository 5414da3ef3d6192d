# Two set-up commands: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo

.PHONY: demo test test-fast bench lint system-deps samples clean

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
	rm -f $(DEMO)/conflictlens.duckdb $(DEMO)/conflictlens.duckdb.wal
	$(BIN)/conflictlens sample --format nginx-extended --lines 500000 --out $(DEMO)/access.log
	$(BIN)/conflictlens ingest --db $(DEMO)/conflictlens.duckdb $(DEMO)/access.log
	$(BIN)/conflictlens clusters --db $(DEMO)/conflictlens.duckdb --limit 15
	@echo
	@echo "The store is $(DEMO)/conflictlens.duckdb; try: $(BIN)/conflictlens clusters --db $(DEMO)/conflictlens.duckdb --method PUT --json"

# Regenerate the small per-format samples kept in sample_logs/.
samples: $(BIN)/conflictlens
	$(BIN)/python -m sample_logs.generator

test: $(BIN)/conflictlens system-deps
	$(BIN)/python -m pytest

test-fast: $(BIN)/conflictlens
	$(BIN)/python -m pytest -m "not slow"

bench: $(BIN)/conflictlens system-deps
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_tail.py

lint: $(BIN)/conflictlens
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(DEMO) bench/out .pytest_cache
