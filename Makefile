# The two commands a fresh machine needs (only Python 3.11 installed):
#   make run    create .venv, install the runtime dependencies, start the bot
#   make test   create .venv, install everything, run ruff, mypy and the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
RUN_DEPS := $(VENV)/.run-deps
DEV_DEPS := $(VENV)/.dev-deps
PIP := $(BIN)/python -m pip install --disable-pip-version-check --quiet

.PHONY: run test lint typecheck unit install install-dev bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "shipbot needs Python 3.11 or newer (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)

$(RUN_DEPS): requirements.txt | $(BIN)/python
	$(PIP) -r requirements.txt
	@touch $@

$(DEV_DEPS): requirements.txt requirements-dev.txt | $(BIN)/python
	$(PIP) -r requirements-dev.txt
	@touch $@ $(RUN_DEPS)

install: $(RUN_DEPS)
install-dev: $(DEV_DEPS)

run: $(RUN_DEPS)
	$(BIN)/python -m bot

lint: $(DEV_DEPS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV_DEPS)
	$(BIN)/mypy

unit: $(DEV_DEPS)
	$(BIN)/pytest

test: lint typecheck unit

bench: $(DEV_DEPS)
	$(BIN)/python bench/classify_bench.py --size-mb 200
	$(BIN)/python bench/event_latency_bench.py --events 200
	$(BIN)/python bench/approve_latency_bench.py --requests 50

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
