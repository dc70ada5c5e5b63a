# The two commands of the README: `make run` and `make test`. Each installs
# what it needs (virtualenv, Python packages, npm assets) on a fresh machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMPS := .stamps
HOST ?= 127.0.0.1
PORT ?= 5000
export DIVERSION_ENV ?= development

.PHONY: run test lint typecheck bench install assets clean

$(STAMPS)/python: pyproject.toml constraints.txt
	@mkdir -p $(STAMPS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $@

$(STAMPS)/npm: package.json package-lock.json
	@mkdir -p $(STAMPS)
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

platform/diversion/static/build/app.css: $(STAMPS)/npm $(wildcard platform/diversion/static/scss/*.scss)
	npm run --silent build

install: $(STAMPS)/python
assets: platform/diversion/static/build/app.css

run: install assets
	$(BIN)/diversion db upgrade
	$(BIN)/diversion tenants sync
	$(BIN)/diversion demo
	@echo "Serving on http://$(HOST):$(PORT)/ - sign in with an account above."
	$(BIN)/diversion run --host $(HOST) --port $(PORT)

test: install assets
	DIVERSION_ENV=test $(BIN)/pytest -n 2 --durations=20 $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install assets
	DIVERSION_ENV=test $(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(STAMPS) node_modules platform/diversion/static/build instance
