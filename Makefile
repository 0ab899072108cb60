# edgebench — README's commands. Everything installs into .venv from pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test bench lint

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "edgebench needs Python 3.11 (found %d.%d)" % sys.version_info[:2]'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: setup            ## run the quickstart suite and print its leaderboard table
	$(BIN)/edgebench run suites/quickstart.yaml

test: setup           ## all tests, slow end-to-end ones included
	$(BIN)/pytest

bench: setup          ## benchmarks that print figures (harness overhead, cold/warm wall time)
	$(BIN)/python benchmarks/harness_overhead.py
	$(BIN)/python benchmarks/quickstart_wall.py
	$(BIN)/python benchmarks/estimator_error.py

lint: setup
	$(BIN)/ruff check bench tests benchmarks
