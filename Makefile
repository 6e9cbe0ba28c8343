# `make run` and `make test` each set up what they need on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-sqlite test-postgres test-fast lint bench clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/flattr-node init
	$(BIN)/flattr-node serve

# The whole suite on SQLite files, then again on PostgreSQL when
# FLATTR_TEST_POSTGRES names a server (.ci/run sets it; CI=true makes a
# missing server a failure).
test: $(STAMP)
	$(BIN)/ruff check .
	$(MAKE) --no-print-directory test-sqlite
	@if [ -n "$$FLATTR_TEST_POSTGRES" ]; then $(MAKE) --no-print-directory test-postgres; \
	 elif [ "$$CI" = "true" ]; then echo "CI: FLATTR_TEST_POSTGRES is not set" >&2; exit 1; \
	 else echo "PostgreSQL run skipped: set FLATTR_TEST_POSTGRES=postgresql://user@host:5432/db to run it"; fi

test-sqlite: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-postgres: $(STAMP)
	FLATTR_TEST_DATABASE="$$FLATTR_TEST_POSTGRES" $(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -x -q

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/close_month.py

clean:
	rm -rf $(VENV) var build *.egg-info
