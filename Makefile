# The two commands: `make run` (the whole app with a demo project) and `make test` (the suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install run test test-fast lint format bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch is pinned in pyproject.toml (torch==2.13.0): never an unpinned build.
	$(PY) -m pip install -q -e ".[dev,fast]"
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) -m scripts.stack

# The suite runs on every core (pytest-xdist): much of it waits on subprocesses (Celery
# workers, torchrun ranks, gunicorn, Chromium), so even two cores overlap well.
PYTEST_WORKERS ?= auto

test: install
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist worksteal --durations=20 $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
