# Every target sets up .venv first if needed (python3 >= 3.10 on PATH).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
SWEEP ?=

.DEFAULT_GOAL := help
.PHONY: help install train test test-fast lint format clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the package with its dev extras

train: $(STAMP)  ## train on the embedded synthetic data (extra overrides: make train ARGS="loss=sdrn")
	$(PY) train.py $(ARGS)

test: $(STAMP)  ## the whole test suite, end-to-end runs included (what CI runs)
	$(PY) -m pytest -m "slow or not slow" $(ARGS)

test-fast: $(STAMP)  ## the fast tests only
	$(PY) -m pytest $(ARGS)

lint: $(STAMP)  ## ruff checks
	$(VENV)/bin/ruff check src tests bench train.py
	$(VENV)/bin/ruff format --check src tests bench train.py

format: $(STAMP)  ## ruff fixes and formatting
	$(VENV)/bin/ruff check --fix src tests bench train.py
	$(VENV)/bin/ruff format src tests bench train.py

clean:  ## remove the venv and caches (outputs/ is kept: runs are never deleted by make)
	rm -rf $(VENV) .pytest_cache .ruff_cache src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
