# Two entry points for a fresh machine: `make run` (the whole stack with a demo) and
# `make test` (the suite). Everything they need is installed from the package registries.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_PY := $(VENV)/.installed
STAMP_NPM := node_modules/.installed

.PHONY: install run test bench clean constraints

# The portal's message catalogues, compiled from their committed .po sources.
MO_FILES := $(patsubst %.po,%.mo,$(wildcard backend/portal/translations/*/LC_MESSAGES/messages.po))

install: $(STAMP_PY) $(STAMP_NPM) $(MO_FILES)

%.mo: %.po $(STAMP_PY)
	$(BIN)/pybabel compile --statistics -i $< -o $@

$(STAMP_PY): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
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
	$(BIN)/python -m bench.throughput

# After changing dependencies in pyproject.toml: resolve them afresh and pin the result.
constraints:
	rm -rf .venv-constraints
	$(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/python -m pip install --quiet --upgrade pip
	.venv-constraints/bin/python -m pip install --quiet -e '.[dev]'
	{ sed -n '1,3p' constraints.txt; .venv-constraints/bin/python -m pip freeze --exclude-editable | grep -v '^anchorline'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf .venv-constraints

clean:
	rm -rf build crytic-export .pytest_cache .hypothesis
