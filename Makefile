# Pishkhan developer tasks. `make test` is the one test command (CI runs it too).

VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?= -q
THROWAWAY_PG := bash scripts/throwaway-postgres.sh
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

.PHONY: help install run test lint typecheck importlint bench-ledger bench-api bench-payments bench-invoices openapi clean

help:
	@echo "make install       create $(VENV) and install pishkhan with its test extras"
	@echo "make run           run the API in dev mode"
	@echo "make test          run the tests (SQLite and a throwaway PostgreSQL 15); PYTEST_ARGS=$(PYTEST_ARGS)"
	@echo "make lint          ruff check and ruff format --check"
	@echo "make typecheck     mypy"
	@echo "make importlint    import-linter contracts"
	@echo "make bench-ledger  ledger benchmark on a throwaway, durable PostgreSQL"
	@echo "make bench-api     transaction API benchmark (vs a bare FastAPI floor), durable PostgreSQL"
	@echo "make bench-payments  paid bills/s over HTTP (sandbox provider), durable PostgreSQL"
	@echo "make bench-invoices  signed invoices/s in batches of 1,000 over HTTP, durable PostgreSQL"
	@echo "make openapi       regenerate openapi/openapi.json"
	@echo "make clean         remove $(VENV) and caches"

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(STAMP)

run: $(STAMP)
	PISHKHAN_ENV=dev $(VENV)/bin/pishkhan serve

test: $(STAMP)
	$(THROWAWAY_PG) $(VENV)/bin/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy signatures ledger audit api tax payments licences

importlint: $(STAMP)
	$(VENV)/bin/lint-imports

bench-ledger: $(STAMP)
	PISHKHAN_PG_FAST=0 $(THROWAWAY_PG) $(PY) -m benchmarks.bench_ledger

bench-api: $(STAMP)
	PISHKHAN_PG_FAST=0 $(THROWAWAY_PG) $(PY) -m benchmarks.bench_api

bench-payments: $(STAMP)
	PISHKHAN_PG_FAST=0 $(THROWAWAY_PG) $(PY) -m benchmarks.bench_payments

bench-invoices: $(STAMP)
	PISHKHAN_PG_FAST=0 $(THROWAWAY_PG) $(PY) -m benchmarks.bench_invoices

# Write to a temporary file first so a failing dump leaves the old spec intact.
openapi: $(STAMP)
	$(PY) -m api.openapi_dump > openapi/openapi.json.tmp || { rm -f openapi/openapi.json.tmp; exit 1; }
	mv openapi/openapi.json.tmp openapi/openapi.json

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
