# Two entry points for a newcomer: `make demo` and `make test` (see README.md).
# Both create and use a local virtual environment (.venv), so they work where the system Python
# refuses `pip install` (PEP 668). Override with `make test VENV=/path/to/env`.
# `make install` is the core (the analysis stack); the demo adds the models extra (torch, OpenCV);
# `make test` and CI install every extra (`all`).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: venv install install-demo install-test demo demo-quick test test-fast check-core

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

venv: $(PY)

install: venv
	$(PIP) install -e .

install-demo: venv
	$(PIP) install -e ".[models]"

install-test: venv
	$(PIP) install -e ".[all]"
	bash scripts/install-display.sh
	bash scripts/install-web.sh
	bash scripts/fetch-segmenter.sh $(VENV)

demo: install-demo
	$(VENV)/bin/bodyscene demo --out results/demo

demo-quick: install-demo
	$(VENV)/bin/bodyscene demo --quick --out results/demo-quick

test: install-test
	$(PY) -m pytest -q tests

test-fast:
	$(PY) -m pytest -q -m "not slow and not display" tests

# a fresh venv with the core alone validates and reports and has no torch (CI runs it)
check-core: install-test
	bash scripts/install-core-check.sh $(PY)
