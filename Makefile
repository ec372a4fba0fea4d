# `make demo` and `make test` set everything up on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/digest send

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check digest tests bench
	$(BIN)/ruff format --check digest tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format digest tests bench
	$(BIN)/ruff check --fix digest tests bench

bench: $(STAMP)
	@echo "Benchmarks live in bench/; see bench/README.md for each command."

clean:
	rm -rf $(VENV) outbox out digest.db digest.db-wal digest.db-shm
