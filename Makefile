# Convene: `make run` serves the demo on http://127.0.0.1:5000; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi
APT_GET := DEBIAN_FRONTEND=noninteractive apt-get

.PHONY: run test install install-test system-test-deps db demo clean

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
		echo "Installing python3-venv (needed to create $(VENV))"; \
		$(APT_GET) update -qq && $(APT_GET) install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv $(VENV); }
	@$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	@touch $@

$(VENV)/.installed-test: requirements-test.txt $(VENV)/.installed
	$(BIN)/pip install -q -r requirements-test.txt
	@touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# What the browser tests need from the system: Debian's Chromium (Playwright drives it).
system-test-deps:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Chromium for the browser tests"; \
		$(APT_GET) update -qq && $(APT_GET) install -y -qq chromium >/dev/null; }

db: install
	$(BIN)/flask db upgrade

demo: db
	$(BIN)/flask convene demo

run: db
	@$(BIN)/flask convene demo-if-empty
	$(BIN)/flask run --host 127.0.0.1 --port 5000

test: install-test system-test-deps
	@PG_URL="$${CONVENE_TEST_DATABASE_URL:-$$($(BIN)/python tests/prepare_pg.py)}"; \
	if [ -n "$$PG_URL" ]; then echo "Testing on SQLite and PostgreSQL ($$PG_URL)"; else echo "Testing on SQLite"; fi; \
	CONVENE_TEST_DATABASE_URL="$$PG_URL" $(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
