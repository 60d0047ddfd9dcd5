# advsamples: `make book` (set-up, data, models, every notebook through papermill, HTML book)
#             `make test` (ruff on code and notebooks, mypy, unit tests, nbval over every notebook).
PROFILE ?= quick
PYTHON  ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed

.PHONY: setup data models notebooks book test unit nbval lint bench clean

setup: $(STAMP)

# The stamp depends on the pins: re-running does nothing unless requirements.lock or pyproject.toml changed.
$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "$$(grep '^pip==' requirements.lock)"
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

data: setup
	$(PY) -m advsamples data

models: data
	$(PY) -m advsamples train --schedule $$($(PY) -c "import yaml;print(yaml.safe_load(open('params/$(PROFILE).yml'))['common']['schedule'])")

notebooks: models
	$(PY) -m advsamples run --profile $(PROFILE)

book: notebooks
	$(VENV)/bin/jupyter-book build . -W -n --keep-going
	@echo "book: $(CURDIR)/_build/html/index.html"

unit: data
	$(PY) -m pytest

nbval: data
	$(PY) -m pytest --nbval-lax -p no:cacheprovider notebooks

test: lint unit nbval

# ruff reads the notebooks too; mypy checks the package (its settings are in pyproject.toml).
lint: setup
	$(VENV)/bin/ruff check src tests notebooks
	$(VENV)/bin/ruff format --check src tests notebooks
	$(VENV)/bin/mypy

bench: models
	$(PY) -m advsamples bench jsma

clean:
	rm -rf _build book/chapters results/quick
