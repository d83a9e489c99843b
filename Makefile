# The two commands a newcomer needs: `make demo` and `make test`.
# Both set up everything on first use (virtualenv, Python packages, Chromium).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kollega-installed

.PHONY: demo test setup system-deps check lint typecheck bench-queue clean

demo: setup  ## one full night of every robot against the sandbox, then the review inbox with a worker beside it
	$(BIN)/kollega demo

# The suite runs in parallel (pytest-xdist): one process more than there are CPUs, since many
# tests wait on a browser, a sandbox over HTTP or a child process; the Chromium tests share one
# process (tests/conftest.py puts them in one xdist group) so that browsers do not starve each
# other. `make test TEST_WORKERS=0` runs everything in one process.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))

test: setup  ## the whole test suite
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

setup: $(STAMP) system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian's Chromium for the browser robots and end-to-end tests: its headless shell (what
# runs at night: the lighter build) and the full browser (for a window when debugging);
# elsewhere use `.venv/bin/playwright install chromium` instead. And xmlsec1, the program
# pysaml2 checks SAML signatures with (SAML sign-in and its tests).
system-deps:
	@if command -v xmlsec1 >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xmlsec1; \
	else \
	    echo "No xmlsec1 found: install your distribution's xmlsec1 (SAML sign-in needs it)"; \
	fi
	@if command -v chromium-headless-shell >/dev/null 2>&1 || ls $$HOME/.cache/ms-playwright/chromium-* >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-headless-shell; \
	elif command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
	    || command -v google-chrome >/dev/null 2>&1; then :; \
	else \
	    echo "No Chromium found: install your distribution's chromium or run '$(BIN)/playwright install chromium'"; \
	fi

# The gates CI enforces before the tests (.ci/run): any finding fails the build.
check: lint typecheck  ## ruff check, ruff format --check, mypy

lint: $(STAMP)  ## ruff's rules and its formatter (pyproject.toml), checked, nothing changed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)  ## mypy --strict over the packages listed in pyproject.toml's [tool.mypy]
	$(BIN)/mypy

bench-queue: setup
	$(BIN)/python bench/queue_throughput.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
