# Two entry points for a newcomer: `make demo` and `make test` (see README.md).
# Both create and use a local virtual environment (.venv), so they work where the system Python
# refuses `pip install` (PEP 668). Override with `make test VENV=/path/to/env`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: venv install install-test demo demo-quick test test-fast

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

venv: $(PY)

install: venv
	$(PIP) install -e .

install-test: venv
	$(PIP) install -e ".[dev,experiment,realseg,web]"
	bash scripts/install-display.sh
	bash scripts/install-web.sh
	bash scripts/fetch-segmenter.sh $(VENV)

demo: install
	$(VENV)/bin/bodyscene demo --out results/demo

demo-quick: install
	$(VENV)/bin/bodyscene demo --quick --out results/demo-quick

test: install-test
	$(PY) -m pytest -q tests

test-fast:
	$(PY) -m pytest -q -m "not slow and not display" tests
