# Claims Portal Console: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app app

.PHONY: run test test-fast checks lint hooks format clean venv bench bench-sweep bench-load bench-console screenshots \
    lock lock-upgrade

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installs come from the lock files (pinned versions; `make lock` updates them) and are stamped
# so that `make run` / `make test` are quick the second time.
$(VENV)/.installed: pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml requirements-dev.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(VENV)/.installed $@

# pip-tools (pip-compile): it resolves through pip itself, so it honours pip's configuration
# (indexes, certificates, constraints) as installs do. No hashes: a wheel built for this
# machine's own index would not match PyPI's.
PIP_COMPILE := $(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links

$(BIN)/pip-compile: | $(BIN)/python
	$(BIN)/python -m pip install --quiet 'pip-tools>=7.4,<8'

## make lock: after editing pyproject.toml's dependencies; keeps every other pin as it is.
lock: $(BIN)/pip-compile
	$(PIP_COMPILE) --output-file=requirements.lock pyproject.toml
	$(PIP_COMPILE) --extra=dev --output-file=requirements-dev.lock pyproject.toml
	$(PIP_COMPILE) --extra=bench --output-file=requirements-bench.lock pyproject.toml

## make lock-upgrade: every dependency to its newest release that pyproject.toml allows.
lock-upgrade: $(BIN)/pip-compile
	$(PIP_COMPILE) --upgrade --output-file=requirements.lock pyproject.toml
	$(PIP_COMPILE) --upgrade --extra=dev --output-file=requirements-dev.lock pyproject.toml
	$(PIP_COMPILE) --upgrade --extra=bench --output-file=requirements-bench.lock pyproject.toml

venv: $(VENV)/.installed

## make run: set up on SQLite with demo data, and serve on http://127.0.0.1:5000 with the scheduler on.
run: $(VENV)/.installed
	$(BIN)/python -m portal.devsetup
	$(FLASK) db upgrade
	PORTAL_ENV=development $(FLASK) portal demo-data --once
	PORTAL_ENV=development PORTAL_SCHEDULER=on PORTAL_BASE_URL=$${PORTAL_BASE_URL:-http://localhost:5000} $(FLASK) run --host 127.0.0.1 --port 5000 --no-reload

## make test: set up with the dev extras, run the checks, then the whole suite.
test: checks
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make checks: ruff check, the format check and mypy (settings in pyproject.toml).
checks: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## make test-fast: the checks, then the suite without the browser and slow tests, in parallel,
## on SQLite only (the PostgreSQL run shares one database between tests).
test-fast: checks
	PORTAL_TEST_DATABASE_URL= HYPOTHESIS_PROFILE=fast \
		$(BIN)/python -m pytest -n auto -m "not slow and not browser" $(PYTEST_ARGS)

## make lint: every pre-commit hook over every file (ruff, mypy, codespell, djlint).
lint: $(VENV)/.installed-dev
	$(BIN)/pre-commit run --all-files

## make hooks: run those hooks on each `git commit` (on the files it changes).
hooks: $(VENV)/.installed-dev
	$(BIN)/pre-commit install

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/login.py

## make bench-sweep: the nightly sweep at 1,000,000 users (heavy); BENCH_ARGS="--users 100000 --pg-url …"
bench-sweep: $(VENV)/.installed-dev
	$(BIN)/python bench/sweep.py $(BENCH_ARGS)

## make bench-load: gunicorn (4 workers) on PostgreSQL under wrk, for docs/sizing.md; it WIPES the
## database: BENCH_ARGS="--pg-url postgresql://…/portal_load [--firms 10000 --users 1000000]"
bench-load: $(VENV)/.installed-dev
	$(BIN)/python bench/load.py $(BENCH_ARGS)

## make bench-console: the users list at 100,000 users beside Django's admin changelist of as
## many, in process and under gunicorn + wrk (installs the bench extra: Django, django-axes).
bench-console: $(VENV)/.installed-dev
	$(BIN)/python -m pip install --quiet -r requirements-bench.lock
	$(BIN)/python bench/console.py --django load $(BENCH_ARGS)

## make screenshots: docs/screenshots/*.png of the main pages (live server, demo data, Chromium).
screenshots: $(VENV)/.installed-dev
	$(BIN)/python tools/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
