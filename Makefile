# The README's two commands: `make run` and `make test`. Both work from a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
SANDBOX_PORT ?= 8081

.PHONY: chromium pgclient run test install lint format migrate demo sandbox worker beat dispatcher bench-webhook bench-worker bench-report bench-admin bench-reconcile clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	$(PYTHON) -m venv $(VENV) || { apt-get update && apt-get install -y python3-venv && $(PYTHON) -m venv $(VENV); }

$(VENV)/.installed: $(BIN)/python pyproject.toml requirements.lock
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e ".[dev]"
	touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py load_demo

## make run: embedded default (SQLite, tasks in-process, local Telegram sandbox) on :8000.
run: demo
	@echo "Local Telegram sandbox on 127.0.0.1:$(SANDBOX_PORT); chat with the bot at http://127.0.0.1:$(PORT)/sandbox/"
	@$(BIN)/python manage.py run_telegram_sandbox --port $(SANDBOX_PORT) \
		--webhook-url http://127.0.0.1:$(PORT)/telegram/webhook/ & \
	sandbox=$$!; trap 'kill $$sandbox 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

## make test: the whole suite on PostgreSQL and Redis (DATABASE_URL / REDIS_URL if set).
## Debian's Chromium for the admin's browser tests (no browser is downloaded from elsewhere).
chromium:
	@command -v chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium; }

## pg_dump and pg_restore, for the backup and restore tests.
pgclient:
	@command -v pg_dump >/dev/null || { apt-get update -q && apt-get install -y -q postgresql-client; }

test: install chromium pgclient
	$(BIN)/python scripts/wait_for_services.py
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

worker: install
	$(BIN)/celery -A config worker -Q default,telegram -l info

beat: install
	$(BIN)/celery -A config beat -l info

## With a worker: wakes it for stored Telegram updates (commands, text, buttons).
dispatcher: install
	$(BIN)/python manage.py run_update_dispatcher

bench-webhook: install
	command -v wrk >/dev/null || { apt-get update && apt-get install -y wrk; }
	$(BIN)/python bench/webhook_bench.py --runs 5 --duration 8

bench-worker: install
	$(BIN)/python bench/worker_bench.py

bench-admin: install
	$(BIN)/python bench/admin_bench.py --runs 5

bench-reconcile: install
	$(BIN)/python bench/reconcile_bench.py --runs 3

bench-report: install
	$(BIN)/python bench/report_bench.py

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache .ruff_cache
