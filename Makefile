# One command each for a fresh machine: `make demo` runs Tiergraph on SQLite with demo data, `make test` tests it.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test install serve bench schema clean

$(BIN)/tiergraph: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/tiergraph

demo: install
	$(BIN)/tiergraph demo

serve: install
	$(BIN)/tiergraph serve

# Runs against SQLite and the PostgreSQL server at 127.0.0.1:5432 (a fresh database per test run).
# The SQL-vs-Python agreement property runs this many random rule sets and bases per database.
HYPOTHESIS_EXAMPLES ?= 250
test: install
	TIERGRAPH_HYPOTHESIS_EXAMPLES=$(HYPOTHESIS_EXAMPLES) $(BIN)/python -m pytest -n 2 --dist loadgroup -q

schema: install
	$(BIN)/tiergraph schema -o schema.graphql

bench: install
	$(BIN)/python bench/bench_rules.py
	$(BIN)/python bench/bench_clv_fit.py

clean:
	rm -rf $(VENV) tiergraph.db* demo-data .pytest_cache
