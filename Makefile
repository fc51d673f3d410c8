# `make run` and `make test` are all a new user needs; see README.md.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint format docs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## run: import the sample dependents into the SQLite database dependents.db
run: $(STAMP)
	$(BIN)/dependents db init
	$(BIN)/dependents customers load sample_data/customers.csv
	$(BIN)/dependents import sample_data/dependents.xlsx --as-of 2026-11-22 --force || [ $$? -eq 1 ]

## test: lint, then every test (database tests skip unless their URL is set; see DEVELOPERS.md)
test: $(STAMP)
	$(BIN)/ruff check pipeline schemas tests bench
	$(BIN)/ruff format --check pipeline schemas tests bench
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check pipeline schemas tests bench

format: $(STAMP)
	$(BIN)/ruff format pipeline schemas tests bench
	$(BIN)/ruff check --fix pipeline schemas tests bench

## docs: regenerate docs/notification-codes.md from the catalogue
docs: $(STAMP)
	$(BIN)/python -m schemas.codes > docs/notification-codes.md

## bench: the benchmark (N rows; default 1,000,000) against SQLite, PostgreSQL and MariaDB
bench: $(STAMP)
	$(BIN)/python -m bench --docs docs/benchmarks.md $(BENCH_ARGS)

clean:
	rm -rf $(VENV) dependents.db dependents.db-wal dependents.db-shm reports
