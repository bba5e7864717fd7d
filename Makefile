# The two commands of the README: `make demo` (set up, train, register, serve) and
# `make test` (set up, lint, type-check, run the whole suite). Both create .venv first.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check
UV     := $(BIN)/uv
# Two levels: the demo needs servewell alone (a few hundred MB); the tests need every
# extra (torch among them: ~2 GB). `make test` after `make demo` adds the extras; `make
# demo` after `make test` installs nothing.
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test

.PHONY: install demo test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The demo installs with uv, which pip brings into the venv (a fresh machine has python3
# and pip only): pip took 80-100 s of the demo's first run resolving and fetching ~60
# projects one at a time; uv does it in parallel. uv writes no bytecode at install (pip
# compiled every file, SciPy's tests included): the demo writes it for what it imports,
# as it imports it, even where PYTHONDONTWRITEBYTECODE is set (else every later command
# would compile scikit-learn again).
$(UV): | $(BIN)/python
	$(PIP) install --quiet 'uv>=0.9'

$(DEMO_STAMP): pyproject.toml | $(UV)
	$(UV) pip install --quiet --python $(BIN)/python -e .
	touch $@

# The full set includes what the demo needs: both stamps are then up to date. Still pip:
# it reads the machine's pip configuration (the local wheels and the cap on torch's
# version), which uv does not.
$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[dev,postgres,redis,text,torch,llm]'
	touch $(DEMO_STAMP) $@

install: $(TEST_STAMP)

demo: $(DEMO_STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/servewell demo --serve

test: lint
	$(BIN)/pytest
	@# The HTTP suites again with the fast lane off: no answer may depend on it.
	SERVEWELL_SERVER__FAST_LANE=false $(BIN)/pytest -q tests/http tests/e2e \
		--ignore=tests/http/test_fastlane.py

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests tools deploy
	$(BIN)/ruff format --check src tests tools deploy
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(TEST_STAMP)
	$(BIN)/ruff check --fix src tests tools deploy
	$(BIN)/ruff format src tests tools deploy

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build src/*.egg-info
