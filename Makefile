# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make book   builds the HTML book into _build/html
#   make test   lints, unit-tests tvae_lib (with coverage) and checks every notebook with strict nbval
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=900

.PHONY: help install book test lint unit nbval hygiene notebooks test-browser bench clean

help:
	@echo "make book          build the HTML book (_build/html/index.html)"
	@echo "make test          lint + unit tests with coverage + notebook hygiene + strict nbval"
	@echo "make notebooks     re-execute every notebook in place from a fresh kernel"
	@echo "make test-browser  open every page of the built book in headless Chromium"

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -r requirements.txt
	$(BIN)/python -m pip install -qq --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book: $(CURDIR)/_build/html/index.html"

lint: $(STAMP)
	$(BIN)/ruff check tvae_lib tests notebooks book/_ext

unit: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider tests --cov=tvae_lib --cov-report=term --cov-fail-under=90

hygiene: $(STAMP)
	$(BIN)/python tests/check_notebooks.py $(NOTEBOOKS)

nbval: $(STAMP)
	$(BIN)/python -m pytest $(NBVAL) -p no:cacheprovider $(NOTEBOOKS)

test: lint unit hygiene nbval

# Re-run every notebook top to bottom in a fresh kernel and store its outputs.
# One chapter: make notebooks NOTEBOOKS=notebooks/03_positional_encoding.ipynb
notebooks: $(STAMP)
	for nb in $(NOTEBOOKS); do \
	  echo "== $$nb"; start=$$(date +%s); \
	  $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=1200 --ExecutePreprocessor.kernel_name=python3 "$$nb" || exit 1; \
	  echo "   $$(( $$(date +%s) - start )) s"; \
	done

test-browser: book
	$(BIN)/python tests/browser/check_book.py _build/html

bench: $(STAMP)
	$(BIN)/python -m tvae_lib.bench

clean:
	rm -rf _build .pytest_cache .ruff_cache .coverage
