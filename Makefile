# Two entry points for a fresh machine: `make run` (the whole stack with a demo) and
# `make test` (the suite). Everything they need is installed from the package registries.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_PY := $(VENV)/.installed
STAMP_NPM := node_modules/.installed

.PHONY: install run test bench clean

install: $(STAMP_PY) $(STAMP_NPM)

$(STAMP_PY): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(STAMP_NPM): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: install
	$(BIN)/anchorline up

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench.gas
	$(BIN)/python -m bench.register

clean:
	rm -rf build crytic-export .pytest_cache .hypothesis
