# Two set-up commands: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo

.PHONY: demo test test-clickhouse test-fast bench lint system-deps samples docs clean

$(BIN)/conflictlens: pyproject.toml setup.py ingest/formats/_scan.c ingest/formats/_json.c ingest/formats/_times.c ingest/formats/_views.h ingest/_routes.c ingest/_otlp.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@# Bytecode, as a wheel install writes it (an editable install leaves it to the first
	@# import, which never writes it under PYTHONDONTWRITEBYTECODE): a tenth of a second per start.
	$(BIN)/python -m compileall -q conflictlens ingest store analysis dashboard
	touch $@

# Debian packages the tests and benchmarks use (goaccess as the speed peer, logrotate for rotation tests).
system-deps:
	@scripts/install-system-deps.sh

demo: $(BIN)/conflictlens
	mkdir -p $(DEMO)
	rm -f $(DEMO)/conflictlens.duckdb $(DEMO)/conflictlens.duckdb.wal
	@# The demo's config (one alert rule) is copied once: the Alerts page saves rules into it.
	test -f $(DEMO)/conflictlens.toml || cp sample_logs/demo.toml $(DEMO)/conflictlens.toml
	@# Eight days of history, so that baselines, growth and incidents have something to compare
	@# with; the last day holds a deploy spike, a fought-over document and a retry storm.
	$(BIN)/conflictlens sample --format nginx-extended --scenario bad-day --hours 192 --lines 1600000 --out $(DEMO)/access.log
	$(BIN)/conflictlens ingest --db $(DEMO)/conflictlens.duckdb $(DEMO)/access.log
	$(BIN)/conflictlens clusters --db $(DEMO)/conflictlens.duckdb --limit 10
	$(BIN)/conflictlens incidents --db $(DEMO)/conflictlens.duckdb
	$(BIN)/conflictlens storms --db $(DEMO)/conflictlens.duckdb
	@echo
	@echo "Starting serve with the dashboard: open http://127.0.0.1:8501/hotspots (the planted deploy spike, document fight and retry storm on the last day); Ctrl-C stops it."
	@# Open a browser when there is a desktop to open it on.
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ] || [ "$$(uname)" = Darwin ]; then \
		(sleep 5; $(BIN)/python -m webbrowser -t http://127.0.0.1:8501/hotspots >/dev/null 2>&1) & fi
	$(BIN)/conflictlens serve --config $(DEMO)/conflictlens.toml --db $(DEMO)/conflictlens.duckdb

# The reference pages in docs/ from the code (tests/test_docs.py fails when they are stale).
docs: $(BIN)/conflictlens
	$(BIN)/python docs/generate.py

# Regenerate the small per-format samples kept in sample_logs/.
samples: $(BIN)/conflictlens
	$(BIN)/python -m conflictlens.sample_logs.generator

# The suite runs on every core (pytest-xdist), a test file per worker: a file's module
# fixtures (stores built from generated logs) are built once.
test: $(BIN)/conflictlens system-deps
	$(BIN)/python -m pytest -n auto --dist loadfile

# The ClickHouse contract: the schema, deduplication and catalog tests against a real server
# (docs/fleet.md says how to start one with the official image); `make test` runs them on chDB.
test-clickhouse: $(BIN)/conflictlens
	@test -n "$$CONFLICTLENS_TEST_CLICKHOUSE_URL" || { \
		echo "set CONFLICTLENS_TEST_CLICKHOUSE_URL, e.g. http://localhost:8123 (see docs/fleet.md)"; \
		exit 2; }
	$(BIN)/python -m pytest -p no:cacheprovider tests/test_clickhouse_schema.py tests/test_catalog_engines.py

test-fast: $(BIN)/conflictlens
	$(BIN)/python -m pytest -n auto --dist loadfile -m "not slow"

# Every benchmark runs even when one before it misses a bar or fails; then one table of every
# bar from the JSON they wrote (bench/summary.py), and the target fails if any was missed. Old
# results are removed first, so that a benchmark that writes none cannot pass on them.
BENCHMARKS := bench_ingest bench_tail bench_otlp bench_analysis bench_report bench_dashboard \
	bench_agent bench_clickhouse bench_clickhouse_floor

bench: $(BIN)/conflictlens system-deps
	@mkdir -p bench/out && rm -f $(BENCHMARKS:%=bench/out/%.json)
	@failed=""; \
	for name in $(BENCHMARKS); do \
		echo "== bench/$$name.py"; \
		$(BIN)/python bench/$$name.py || failed="$$failed $$name"; \
	done; \
	$(BIN)/python bench/summary.py --failed "$$failed"

lint: $(BIN)/conflictlens
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(DEMO) bench/out .pytest_cache
