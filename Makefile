# Ketamine clinic patient assistant. `make run` starts everything; `make test` checks everything.
# Every target does the setup it needs (venv, dependencies, database, model) and skips what is done.

PYTHON ?= python3.10
VENV   := .venv
PY     := $(VENV)/bin/python
RASA   := $(VENV)/bin/rasa
DEPS   := $(VENV)/.deps-$(shell cat requirements.txt | sha256sum | cut -c1-12)

export RASA_PORT   ?= 5005
export ACTION_PORT ?= 5055
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONPATH := $(CURDIR)

# The website widget's socket.io client comes from npm (web/package-lock.json), installed into
# web/node_modules (git-ignored) again whenever the lock file changes. Never from a CDN.
WEB_DEPS := web/node_modules/.package-lock.json
# Browser tests drive Debian's Chromium (Playwright with executable_path; no browser download).
CHROMIUM := /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The model is named after what it is trained from: a new name means "retrain".
# Channel connectors (addons/*_channel.py) are not part of the model: editing them never retrains.
MODEL_INPUTS := config.yml domain.yml $(sort $(wildcard data/*.yml data/nlu/*.yml)) \
	$(filter-out addons/%_channel.py,$(wildcard addons/*.py)) requirements.txt
MODEL_HASH   := $(shell cat $(MODEL_INPUTS) | sha256sum | cut -c1-16)
MODEL        := models/clinic-$(MODEL_HASH).tar.gz

.PHONY: run run-prod nginx deploy-tools test lint train eval validate pytest stories escalations reconcile answers db deps web-deps chromium clean help bench purge

help:
	@echo "make run          start the assistant (Rasa, action server, staff console, chat widget) on SQLite"
	@echo "make test         lint, data validation, conversation tests, the evaluation and pytest"
	@echo "make lint         ruff on the whole tree, mypy on clinic/ (settings: pyproject.toml)"
	@echo "make train        train the model if data/domain/config changed"
	@echo "make eval         evaluation on tests/eval (fails below tests/eval/bars.yml)"
	@echo "make escalations  list open escalations"
	@echo "make purge        delete patient data older than retention_days in clinic.yml (ARGS=--dry-run: only count)"
	@echo "make bench        load benchmark against a plain Rasa bot (BENCH_ARGS=\"--duration 10 --skip-reference\")"

INSTALL_REQUIREMENTS = $(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt "setuptools==70.3.0"
deps: $(DEPS)
$(DEPS): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "pip==24.2"
	$(INSTALL_REQUIREMENTS) || { echo "pip install failed; retrying once without pip's cache (a download can arrive damaged)"; \
		$(INSTALL_REQUIREMENTS) --no-cache-dir; }
	@rm -f $(VENV)/.deps-*
	@touch $@

db: $(DEPS)
	$(PY) -m clinic.cli migrate

web-deps: $(WEB_DEPS)
$(WEB_DEPS): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

chromium: $(CHROMIUM)
$(CHROMIUM):
	$(SUDO) apt-get install -y --no-install-recommends chromium chromium-driver \
		|| ($(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends chromium chromium-driver)

train: $(MODEL)
$(MODEL): $(DEPS) $(MODEL_INPUTS)
	@mkdir -p models
	$(RASA) train --quiet --config config.yml --domain domain.yml --data data \
		--out models --fixed-model-name clinic-$(MODEL_HASH)
	@find models -name 'clinic-*.tar.gz' ! -name 'clinic-$(MODEL_HASH).tar.gz' -delete

run: $(MODEL) db $(WEB_DEPS)
	$(PY) -m clinic.launcher --model $(MODEL)

# Production layout on this machine (docs/production.md): nginx on RASA_PORT, STAFF_PORT and
# WEB_PORT in front of two Rasa instances (RASA_PORT+1 and +2), the staff console (STAFF_PORT+1)
# and the web server (WEB_PORT+1), all on 127.0.0.1, with one action server, on PostgreSQL and
# Redis. nginx runs as you (its files under var/nginx/). Unset CLINIC_DATABASE_URL /
# TRACKER_STORE_URL / REDIS_URL default to the local servers below (create the database once:
# createdb -h 127.0.0.1 -U postgres clinic). The launcher checks them all (and migrates the clinic
# database) before starting.
PROD_DATABASE_URL := postgresql://postgres@127.0.0.1:5432/clinic
PROD_REDIS_URL    := redis://127.0.0.1:6379/0
run-prod: $(MODEL) $(WEB_DEPS) nginx
	CLINIC_DATABASE_URL="$${CLINIC_DATABASE_URL:-$(PROD_DATABASE_URL)}" \
	TRACKER_STORE_URL="$${TRACKER_STORE_URL:-$(PROD_DATABASE_URL)}" \
	REDIS_URL="$${REDIS_URL:-$(PROD_REDIS_URL)}" \
	$(PY) -m clinic.launcher --model $(MODEL) --rasa-instances "$${RASA_INSTANCES:-2}" --nginx

# Debian's nginx package, installed with apt (through sudo) when no nginx is found. The package's
# own service (port 80, /etc/nginx) is not used here: `systemctl disable --now nginx` if unwanted.
nginx:
	@PATH="$$PATH:/usr/sbin:/usr/local/sbin:/sbin" command -v nginx >/dev/null || \
		$(SUDO) apt-get install -y --no-install-recommends nginx || \
		($(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends nginx)

# What the deployment tests check the shipped files with: `nginx -t` and `systemd-analyze verify`
# (Debian's systemd package; installing it starts nothing in a container).
deploy-tools: nginx
	@command -v systemd-analyze >/dev/null || $(SUDO) apt-get install -y --no-install-recommends systemd || \
		($(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends systemd)

# Settings in pyproject.toml. Runs first in `make test`: it takes seconds, the rest takes minutes.
lint: $(DEPS)
	$(PY) -m ruff check .
	$(PY) -m mypy clinic

validate: $(DEPS)
	$(RASA) data validate --config config.yml --domain domain.yml --data data --fail-on-warnings

pytest: $(MODEL) db $(WEB_DEPS) $(CHROMIUM) deploy-tools
	CLINIC_MODEL=$(MODEL) $(PY) -m pytest

stories: $(MODEL)
	$(RASA) test core --model $(MODEL) --stories tests/test_stories.yml \
		--endpoints endpoints.yml --fail-on-prediction-errors --out results/stories

eval: $(MODEL)
	$(PY) -m tools.evaluation --model $(MODEL)
	$(PY) -m tools.evaluation --model $(MODEL) --dir tests/eval/spanish --out results/eval-spanish.json

# pytest runs last so the run closes on its summary line ("N passed").
test: lint validate stories eval pytest

# Trains both bots in a temporary folder (timed), then loads each over REST; see tools/bench.py.
bench: $(DEPS)
	$(PY) -m tools.bench $(BENCH_ARGS)

# Times the staff console's Insights page for 90 days over 100,000 generated conversations (goal
# 1 s); the data is generated once under var/insights-bench/. See tools/insights_data.py.
insights-bench: $(DEPS)
	$(PY) -m tools.insights_data bench $(INSIGHTS_BENCH_ARGS)

escalations: db
	$(PY) -m clinic.cli escalations

reconcile: db
	$(PY) -m clinic.cli reconcile

answers: $(DEPS)
	$(PY) -m clinic.cli answers

# Retention (clinic.yml retention_days): `make purge ARGS=--dry-run` only counts. Run it daily
# (cron or a systemd timer: docs/DEPLOYMENT.md).
purge: db
	$(PY) -m clinic.cli purge $(ARGS)

clean:
	rm -rf models results var
