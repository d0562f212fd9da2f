# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# The test suite runs against the real services (PostgreSQL, Redis); override to taste.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/atom
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15
# The RabbitMQ tests' own vhost (created with rabbitmqctl when missing).
TEST_RABBITMQ_URL ?= amqp://guest:guest@127.0.0.1:5672/atom_test
TEST_ENV := DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) \
	TEST_RABBITMQ_URL=$(TEST_RABBITMQ_URL) \
	SECRET_KEY=test-only-secret DEBUG=false ALLOWED_HOSTS='*' SECURE_SSL_REDIRECT=false \
	SESSION_COOKIE_SECURE=false CSRF_COOKIE_SECURE=false

.PHONY: venv demo test lint messages clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# The compiled catalogues (*.mo) are not committed (.gitignore): built here before every test run
# and demo, with gettext's msgfmt when installed, else with polib (pure Python, installed by the
# test extra) so a fresh machine needs no gettext for the demo.
messages: $(STAMP)
	@if command -v msgfmt >/dev/null 2>&1; then \
		DEBUG=true $(PY) manage.py compilemessages --ignore=.venv -v 0; \
	else for po in locale/*/LC_MESSAGES/*.po; do \
		$(PY) -c 'import sys, polib; polib.pofile(sys.argv[1]).save_as_mofile(sys.argv[2])' \
			"$$po" "$${po%.po}.mo"; done; fi

# The demo: embedded SQLite and a folder broker under var/, nothing else to install or run.
# Override with e.g. `make demo DEMO_PORT=8001 DEMO_RATE=20 DEMO_DURATION=300`.
DEMO_PORT ?= 8000
DEMO_RATE ?= 5
DEMO_DURATION ?= 0
demo: $(STAMP) messages
	env -u DATABASE_URL -u CELERY_BROKER_URL DEBUG=true $(PY) manage.py demo \
		--port $(DEMO_PORT) --rate $(DEMO_RATE) --duration $(DEMO_DURATION)

test: $(STAMP) messages
	$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(TEST_ENV) $(VENV)/bin/mypy .

clean:
	rm -rf $(VENV) var
