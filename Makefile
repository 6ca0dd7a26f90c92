# Two entry points for a fresh machine: `make run` (the whole stack with a demo) and
# `make test` (the suite). Everything they need is installed from the package registries.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_PY := $(VENV)/.installed
STAMP_NPM := node_modules/.installed
# What the browser tests (tests/browser) need from the system: Debian's Chromium, which Playwright
# launches by path (it downloads no browser; CHROMIUM_BINARY names another), and a font with
# Chinese characters for their screenshots of the Chinese pages.
BROWSER_PACKAGES := chromium fonts-wqy-microhei
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --quiet $(BROWSER_PACKAGES)

.PHONY: install run test bench clean constraints chromium

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

test: install chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Installed once, when missing; `apt-get update` only if the install fails without it.
chromium:
	@if [ -n "$$CHROMIUM_BINARY" ]; then \
	  test -x "$$CHROMIUM_BINARY" || { echo "CHROMIUM_BINARY=$$CHROMIUM_BINARY is not an executable file" >&2; exit 1; }; \
	elif ! command -v chromium >/dev/null || ! fc-list :lang=zh 2>/dev/null | grep -q .; then \
	  echo "installing $(BROWSER_PACKAGES) for the browser tests"; \
	  $(APT_INSTALL) || { $(SUDO) apt-get update --quiet && $(APT_INSTALL); } || { \
	    echo "could not install $(BROWSER_PACKAGES): the browser tests (tests/browser) need Debian's chromium" \
	         "package and a Chinese font; install them (sudo apt-get install $(BROWSER_PACKAGES)), or set" \
	         "CHROMIUM_BINARY to a Chromium binary" >&2; exit 1; }; \
	fi

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
