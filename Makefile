# claimpay: `make run` starts the local stack, `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.claimpay-installed

.PHONY: run test lint typecheck pytest bench lock clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $(STAMP)

run: $(STAMP) ## API on :8000, a worker, Flower on :5555, embedded Redis and SQLite (kept in var/)
	$(BIN)/claimpay dev

test: lint typecheck pytest ## ruff, lint-imports, mypy --strict, pytest

lint: $(STAMP) ## ruff, and import-linter's layer contracts (pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP) ## the benchmark in bench/ (needs PostgreSQL and Redis)
	$(BIN)/python -m bench

lock: ## refresh constraints.txt from a clean install of pyproject.toml's ranges
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet -e ".[dev]"
	.lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .import_linter_cache
