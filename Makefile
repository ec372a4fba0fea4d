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
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null || \
		echo "note: PostgreSQL is not installed, so its tests are skipped (apt-get install postgresql)"
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check digest tests bench
	$(BIN)/ruff format --check digest tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format digest tests bench
	$(BIN)/ruff check --fix digest tests bench

# The summaries benchmark needs the evaluation set, which is not in the repo:
#   make bench EVAL=../shared/eval/cnndm-dev.jsonl
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/render.py
	$(BIN)/python bench/collect.py
	$(BIN)/python bench/subscribers.py
	$(BIN)/python bench/send.py
	$(BIN)/python bench/scale.py
	@if [ -n "$(EVAL)" ]; then $(BIN)/python bench/summaries.py "$(EVAL)"; \
	else echo "bench/summaries.py skipped: pass EVAL=path/to/cnndm-dev.jsonl"; fi

clean:
	rm -rf $(VENV) outbox out digest.db digest.db-wal digest.db-shm
