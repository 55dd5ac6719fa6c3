# krakenwatch — the two set-up commands: `make demo` (run the product) and `make test` (run the tests).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
# Debian packages the tests need: prometheus (+promtool) and prometheus-alertmanager for the metrics
# and alerting tests, chromium for the browser tests, redis-server for the shared nonce store,
# redis-sentinel and iproute2 (ip netns) for the multi-host fault suite
DEB_PACKAGES ?= prometheus prometheus-alertmanager chromium redis-server redis-sentinel iproute2
SOURCES := $(wildcard broker dashboard simulator gateway testkit bench tests)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint typecheck pytest bench screenshots system-deps install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

system-deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

demo: $(STAMP)
	$(BIN)/krakenwatch demo

lint: $(STAMP)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

typecheck: $(STAMP)
	$(BIN)/mypy

# coverage of broker, dashboard and simulator (settings in pyproject.toml), reported in the terminal
pytest: $(STAMP) system-deps
	$(BIN)/pytest -q --cov --cov-report=term

test: lint typecheck pytest

bench: $(STAMP) system-deps
	$(BIN)/python -m bench

# the README's screenshots (docs/*.png), taken from the demo in headless Chromium
screenshots: $(STAMP) system-deps
	$(BIN)/python -m bench.screenshots

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
