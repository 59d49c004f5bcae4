# Two entry points for a newcomer: `make demo` and `make test` (see README.md).
PYTHON ?= python3
PIP    ?= $(PYTHON) -m pip

.PHONY: install install-test demo demo-quick test test-fast

install:
	$(PIP) install -e .

install-test:
	$(PIP) install -e ".[dev,experiment]"
	bash scripts/install-display.sh

demo: install
	bodyscene demo --out results/demo

demo-quick: install
	bodyscene demo --quick --out results/demo-quick

test: install-test
	$(PYTHON) -m pytest -q tests

test-fast:
	$(PYTHON) -m pytest -q -m "not slow and not display" tests
