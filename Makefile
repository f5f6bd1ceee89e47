# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FLASK := $(BIN)/flask --app portal
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install run test lint bench clean translations compile-translations

install: $(STAMP)

$(STAMP): setup.cfg setup.py pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,server]'
	$(MAKE) compile-translations
	touch $(STAMP)

# Message catalogs: the .po files are committed, the compiled .mo files are not.
CATALOGS := portal/translations
compile-translations:
	$(BIN)/pybabel compile --statistics -d $(CATALOGS)

# After changing any client-facing text: extract it and update every catalog.
translations: install
	$(BIN)/pybabel extract --project=consultation-portal --no-location --sort-output \
	  -F babel.cfg -k _l -k N_ -o $(CATALOGS)/messages.pot .
	$(BIN)/pybabel update -N --no-wrap -i $(CATALOGS)/messages.pot -d $(CATALOGS)
	$(BIN)/pybabel compile --statistics -d $(CATALOGS)

# A secret key and an encryption key generated once and kept in instance/ (never
# committed), readable by its owner only. Double colon: checked on every run, so a
# config.py written before the portal encrypted anything gets its key added.
instance/config.py::
	@if [ ! -f $@ ]; then umask 077 && \
	  $(BIN)/python -c "import secrets; print(f'SECRET_KEY = {secrets.token_hex(32)!r}')" > $@ && \
	  echo "Wrote $@ with a new SECRET_KEY."; fi
	@if ! grep -q '^ENCRYPTION_KEYS' $@; then umask 077 && \
	  { [ -z "$$(tail -c1 $@)" ] || echo >> $@; } && \
	  $(BIN)/python -c "import base64, os; print(f'ENCRYPTION_KEYS = [{base64.b64encode(os.urandom(32)).decode()!r}]')" >> $@ && \
	  echo "Added a new ENCRYPTION_KEYS to $@: messages and notes are stored encrypted with it (keep it)."; fi

run: export FLASK_MAIL_BACKEND ?= sink
# Texts go to instance/sms/*.txt (one file per text), never to a phone.
run: export FLASK_SMS_BACKEND ?= sink
# Links in the demo's emails lead back to the demo, on whatever port it serves.
run: export FLASK_PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)
run: export FLASK_OUTBOX_BACKGROUND ?= true
# The demo may read calendars served from this machine (a local Radicale, a file server).
run: export FLASK_CALENDAR_ALLOW_PRIVATE_URLS ?= true
# The demo signs in with a password alone; production keeps the second step on (the default).
run: export FLASK_REQUIRE_MFA ?= false
run: install instance/config.py
	$(FLASK) db upgrade
	@if [ ! -f instance/.demo-seeded ]; then $(FLASK) seed-demo && touch instance/.demo-seeded; \
	  else echo "Demo data already seeded (demo admin: admin@example.com; reset its password with: $(FLASK) create-user admin@example.com --role admin --reset-password)"; fi
	@echo "Mail goes to instance/mail/*.eml; its links lead to $(FLASK_PUBLIC_BASE_URL)/. Open http://$(HOST):$(PORT)/"
	@echo "Second sign-in step (MFA) is $(if $(filter false False 0,$(FLASK_REQUIRE_MFA)),OFF for this demo (FLASK_REQUIRE_MFA=$(FLASK_REQUIRE_MFA)); production requires it,ON (FLASK_REQUIRE_MFA=$(FLASK_REQUIRE_MFA)))."
	$(FLASK) run --host $(HOST) --port $(PORT) --no-reload

lint: install
	$(BIN)/ruff check portal tests bench

test: install lint compile-translations
	$(BIN)/python -m pytest
	@echo "Screenshots of every page: $(CURDIR)/test-artifacts/screenshots"

# The benchmarks' own client libraries (the `bench` extra), on top of install.
$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,server,bench]'
	touch $@

bench: install $(VENV)/.bench-installed
	@for script in bench/[!_]*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info test-artifacts .hypothesis
