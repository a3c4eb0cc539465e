# One-command set-up: `make demo` (environment + demo), `make test` (environment + tests).
# torch 2.13.0 is installed first on its own: pip takes the CPU build from this machine's disk;
# an unpinned torch would pull a multi-GB CUDA build.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ccr-installed
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
DEMO_DIR ?= demo-out

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,ray]'
	touch $(STAMP)

install: $(STAMP)

# The report's browser tests drive Debian's Chromium through Playwright, which cannot download
# browsers here; only tests need it (about a minute, once).
$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

demo: install
	rm -rf $(DEMO_DIR)
	$(BIN)/ccr demo $(DEMO_DIR)

test: install $(CHROMIUM)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -n auto

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
