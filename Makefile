# Synthgate: the few verbs people use. Everything runs from the repo's own .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.synthgate-installed
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup setup-engines demo test test-fast faults tooling lint bench airflow airflow-stop clean

setup: $(STAMP) ## create .venv and install the pinned stack from requirements.lock

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (set PYTHON=...)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m pip check
	touch $@

setup-engines: setup ## build the engines' own locked environments (.engines/; tabular_argn: ~2 min, 1.7 GB)
	$(BIN)/synthgate engines --setup all

demo: setup ## run the pipeline for every `default: true` dataset (the demo: hdma)
	$(BIN)/synthgate demo

TEST_WORKERS ?= auto

test: setup setup-engines tooling ## the full test suite (what CI runs): one pytest worker per core (at most 4), a module per worker
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --maxprocesses 4 --dist loadscope

tooling: ## the compose linter from package-lock.json (skipped, with a note, without npm)
	@if [ -x node_modules/.bin/dclint ]; then :; \
	elif command -v npm >/dev/null; then npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the compose-lint test will be skipped"; fi

test-fast: setup ## unit tests only (no end-to-end, no services)
	$(BIN)/python -m pytest -m "not slow and not integration"

faults: setup ## kill -9 at 30 random points of every stage and inside publish (long: docs/security.md has the times; SYNTHGATE_FAULT_SEED replays)
	SYNTHGATE_FAULT_N=$${SYNTHGATE_FAULT_N:-30} $(BIN)/python -m pytest tests/faults -p no:cacheprovider -rA -s

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	test ! -x node_modules/.bin/dclint || scripts/lint-compose.sh

bench: setup ## benchmarks: prints a table, see docs/benchmarks.md
	$(BIN)/python benchmarks/run.py

airflow: setup ## a local Airflow 3 (standalone, SQLite) with this repo's DAGs
	scripts/airflow-local.sh start

airflow-stop:
	scripts/airflow-local.sh stop

clean: ## remove generated data, models, reports and local tracking (not the .venv)
	rm -rf data/raw data/prepared data/synthetic data/blended models runs reports mlflow.db mlartifacts logs
