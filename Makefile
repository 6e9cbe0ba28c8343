# `make run` and `make test` each set up what they need on a fresh machine:
# `make run` only what the node needs, `make test` the test tools too.
# `make run PORT=8090` serves on another port (links follow it).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/pip install --quiet --quiet --disable-pip-version-check

.PHONY: run test test-sqlite test-postgres test-fast lint bench clean

$(RUN_STAMP): setup.cfg pyproject.toml
	@echo "setting up $(VENV): the node and what it needs (once; this takes a minute)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(PIP) --upgrade pip
	@$(PIP) -e .
	@touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	@echo "adding the test tools to $(VENV) (once)"
	@$(PIP) -e '.[test]'
	@touch $(STAMP)

run: $(RUN_STAMP)
	$(BIN)/flattr-node init
	$(BIN)/flattr-node serve$(if $(PORT), --port $(PORT))

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
