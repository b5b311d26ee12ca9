# casedesk developer commands. Everything runs from .venv, which these targets create and keep
# in step with pyproject.toml (a stamp per pyproject.toml content: editing the pins
# reinstalls, an unchanged file costs nothing).
#
#   make run         the whole local stack: Temporal dev server + UI, database, worker, API
#   make test        the test suite (SQLite and PostgreSQL)
#   make demo        on a running stack (make run): open a realistic day of cases of every type
#   make bench       benchmarks (ratios against a bare Temporal workflow)
#   make lint        ruff check, ruff format --check, mypy
#   make fmt         ruff --fix and ruff format
#   make migration m="what changed"   autogenerate an Alembic revision from schemas/tables.py
#   make clean       delete .data/ (local database, Temporal history, dev key)

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

# The stamps are named after pyproject.toml's content, so a changed pin means a new stamp.
PYPROJECT_HASH := $(shell cksum pyproject.toml | cut -d' ' -f1)
RUN_STAMP := $(VENV)/.installed-run-$(PYPROJECT_HASH)
DEV_STAMP := $(VENV)/.installed-dev-$(PYPROJECT_HASH)

PG_HOST := 127.0.0.1
PG_PORT := 5432

.PHONY: help run demo test bench lint fmt migration clean venv venv-dev postgres chromium

help:
	@sed -n 's/^#   //p' Makefile

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "casedesk needs Python 3.11 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>&1)." >&2; \
	  echo "Install it, or point make at it: make $(MAKECMDGOALS) PYTHON=python3.11" >&2; \
	  exit 1; }
	@echo "creating $(VENV) with $$($(PYTHON) --version)"
	@$(PYTHON) -m venv $(VENV) || { \
	  echo "could not create $(VENV) (on Debian/Ubuntu: apt-get install python3-venv)" >&2; \
	  rm -rf $(VENV); exit 1; }

$(RUN_STAMP): | $(BIN)/python
	@echo "installing the pinned dependencies into $(VENV) (first time: a few minutes) ..."
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	@rm -f $(VENV)/.installed-run-*
	@touch $@

$(DEV_STAMP): | $(BIN)/python
	@echo "installing the pinned dependencies and dev tools into $(VENV) (first time: a few minutes) ..."
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-run-* $(VENV)/.installed-dev-*
	@touch $@ $(RUN_STAMP)

venv: $(RUN_STAMP)
venv-dev: $(DEV_STAMP)

run: $(RUN_STAMP)
	$(BIN)/python -m core.devstack

# Start the local PostgreSQL (the tests run on it as well as on SQLite) if it is down and
# this machine has a Debian-style cluster; elsewhere, point CASEDESK_TEST_PG_URL at a server.
postgres:
	@if command -v pg_isready >/dev/null && ! pg_isready -q -h $(PG_HOST) -p $(PG_PORT); then \
	  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then \
	    version=$$(ls /etc/postgresql | sort -V | tail -n 1); \
	    echo "starting PostgreSQL $$version ..."; \
	    pg_ctlcluster --skip-systemctl-redirect "$$version" main start || true; \
	    for _ in $$(seq 30); do pg_isready -q -h $(PG_HOST) -p $(PG_PORT) && break; sleep 1; done; \
	  fi; \
	fi; \
	if command -v pg_isready >/dev/null && ! pg_isready -q -h $(PG_HOST) -p $(PG_PORT); then \
	  echo "warning: no PostgreSQL on $(PG_HOST):$(PG_PORT); the postgresql tests will fail" >&2; \
	fi

# The browser tests drive Debian's chromium; install it (Debian's package, never a browser
# build downloaded by Playwright) when this machine has none.
chromium:
	@if ! command -v chromium >/dev/null; then \
	  echo "installing Debian's chromium for the browser tests ..."; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$sudo apt-get install -y -q chromium >/dev/null 2>&1 \
	    || { $$sudo apt-get update -q >/dev/null && $$sudo apt-get install -y -q chromium >/dev/null; } \
	    || { echo "could not install chromium; the browser tests will fail" >&2; }; \
	fi

demo: $(RUN_STAMP)
	$(BIN)/python -m core.demo

test: $(DEV_STAMP) postgres chromium
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(DEV_STAMP)
	$(BIN)/python -m bench

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

fmt: $(DEV_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Autogenerates against a scratch SQLite database migrated to head, so the revision holds
# exactly the change in schemas/tables.py, whatever state your own database is in. Review it
# before committing: autogenerate does not see renames, and data migrations are written by hand.
migration: $(DEV_STAMP)
	@test -n "$(m)" || { echo 'usage: make migration m="add shipment weight"' >&2; exit 1; }
	@scratch=$$(mktemp -d); trap 'rm -rf "$$scratch"' EXIT; \
	export DATABASE_URL="sqlite:///$$scratch/migration.db"; \
	$(BIN)/alembic -q upgrade head && $(BIN)/alembic revision --autogenerate -m "$(m)"

clean:
	@if [ -d .data ]; then \
	  echo "WARNING: this deletes .data/: the local database (cases, messages), the Temporal"; \
	  echo "history of every case, the logs and the dev API key."; \
	  if [ -t 0 ] && [ -z "$(FORCE)" ]; then \
	    read -r -p "Delete .data/? [y/N] " answer; \
	    [ "$$answer" = y ] || [ "$$answer" = Y ] || { echo "kept."; exit 0; }; \
	  fi; \
	  rm -rf .data && echo "deleted .data/ (.venv is kept; rm -rf .venv to reinstall)"; \
	else \
	  echo "nothing to clean: no .data/"; \
	fi
