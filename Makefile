# Convene: `make run` serves the demo on http://127.0.0.1:5000; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi
APT_GET := DEBIAN_FRONTEND=noninteractive apt-get

.PHONY: run test install install-test system-deps system-test-deps db demo clean translations translations-extract \
	translations-update translations-compile

# Debian packages the app needs: Pango and HarfBuzz for WeasyPrint (badges, agendas, receipts),
# and Noto fonts so names in every script print. The tests add Chromium.
SYSTEM_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji
TEST_SYSTEM_PACKAGES := chromium
define apt_install_missing
	@missing=""; for pkg in $(1); do \
		dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "ok installed" || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "Installing system packages:$$missing"; \
		$(APT_GET) update -qq && $(APT_GET) install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

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

system-deps:
	$(call apt_install_missing,$(SYSTEM_PACKAGES))

# What the browser tests need from the system: Debian's Chromium (Playwright drives it).
system-test-deps: system-deps
	$(call apt_install_missing,$(TEST_SYSTEM_PACKAGES))

db: install system-deps
	$(BIN)/flask db upgrade

# Catalogues: `make translations` extracts every marked string (Python and templates) into two templates,
# convene/translations/messages.pot (attendee-facing, babel.cfg) and admin.pot (the back office and staff-only
# emails and PDFs, babel-admin.cfg), and merges each into every language's messages.po / admin.po; translate
# what is new there, then `make translations-compile` (run by `make run` and `make test`) builds the .mo files.
TRANSLATIONS := convene/translations
PO_FILES := $(wildcard $(TRANSLATIONS)/*/LC_MESSAGES/*.po)
MO_FILES := $(PO_FILES:.po=.mo)

translations: translations-update

translations-extract: install
	$(BIN)/pybabel extract -F babel.cfg --no-location --sort-output -k lazy_gettext -k _l -k N_ --no-wrap \
		-o $(TRANSLATIONS)/messages.pot .
	$(BIN)/pybabel extract -F babel-admin.cfg --no-location --sort-output -k lazy_gettext -k _l -k N_ --no-wrap \
		-o $(TRANSLATIONS)/admin.pot .

translations-update: translations-extract
	$(BIN)/pybabel update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) --no-fuzzy-matching --ignore-obsolete --no-wrap
	$(BIN)/pybabel update -D admin -i $(TRANSLATIONS)/admin.pot -d $(TRANSLATIONS) --no-fuzzy-matching --ignore-obsolete \
		--no-wrap

translations-compile: $(MO_FILES)

$(TRANSLATIONS)/%.mo: $(TRANSLATIONS)/%.po | $(VENV)/.installed
	$(BIN)/pybabel compile --statistics -i $< -o $@

demo: db
	$(BIN)/flask convene demo

run: db translations-compile
	@$(BIN)/flask convene demo-if-empty
	$(BIN)/flask run --host 127.0.0.1 --port 5000

# The suite runs in parallel (pytest-xdist), one process per core, at most 8; each process has its own SQLite
# file and its own PostgreSQL database (convene_test_gw0, ...). `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ "$$n" -gt 8 ] && n=8; [ "$$n" -lt 2 ] && n=0; echo $$n)

test: install-test system-test-deps translations-compile
	@PG_URL="$${CONVENE_TEST_DATABASE_URL:-$$($(BIN)/python tests/prepare_pg.py)}"; \
	WORKERS="with $(TEST_WORKERS) workers"; [ "$(TEST_WORKERS)" = 0 ] && WORKERS="in one process"; \
	if [ -n "$$PG_URL" ]; then echo "Testing on SQLite and PostgreSQL ($$PG_URL) $$WORKERS"; \
	else echo "Testing on SQLite $$WORKERS"; fi; \
	CONVENE_TEST_DATABASE_URL="$$PG_URL" $(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
