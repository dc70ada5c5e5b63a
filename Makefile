# The two commands of the README: `make run` and `make test`. Each installs
# what it needs (virtualenv, Python packages, npm assets) on a fresh machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMPS := .stamps
HOST ?= 127.0.0.1
PORT ?= 5000
export DIVERSION_ENV ?= development

TRANSLATIONS := platform/diversion/translations
CATALOGUES := $(patsubst %.po,%.mo,$(wildcard $(TRANSLATIONS)/*/LC_MESSAGES/messages.po))

.PHONY: run test lint typecheck bench install assets translations clean

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

# Each language's catalogue, compiled for the app to read.
$(TRANSLATIONS)/%/LC_MESSAGES/messages.mo: $(TRANSLATIONS)/%/LC_MESSAGES/messages.po $(STAMPS)/python
	$(BIN)/pybabel compile -i $< -o $@

install: $(STAMPS)/python
assets: platform/diversion/static/build/app.css $(CATALOGUES)

# Every string marked for translation, extracted; each language's catalogue brought up to date
# (new strings to translate appear empty in its messages.po; a test fails until they are).
translations: install
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location --omit-header --sort-output -o $(TRANSLATIONS)/messages.pot .
	$(BIN)/pybabel update --no-fuzzy-matching --width 120 -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS)

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
	rm -rf $(VENV) $(STAMPS) node_modules platform/diversion/static/build instance $(CATALOGUES)
