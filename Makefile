# Two virtual environments: .venv holds everything (service, training with TensorFlow, tests);
# .venv-serve holds the service and the test tools only, to prove serving needs no TensorFlow.
VENV ?= .venv
SERVE_VENV ?= .venv-serve
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: install test test-serving lint format demo

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train,dev,test-server]'
	touch $@

$(SERVE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/python -m pip install -q --upgrade pip
	$(SERVE_VENV)/bin/python -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# The test command of the README and of CI. pytest's exit 5 (no test collected) is a failure.
test: install
	@$(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: something is wrong" >&2; fi; \
	exit $$rc

# The unit tier where only the base and dev extras are installed (CI runs it first).
test-serving: $(SERVE_VENV)/.installed
	@if $(SERVE_VENV)/bin/python -c "import tensorflow" 2>/dev/null; then \
	  echo "$(SERVE_VENV) has TensorFlow: it must hold the serving install only" >&2; exit 1; fi
	$(SERVE_VENV)/bin/python -m pytest -q tests/unit

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# From a fresh clone to a running API on the embedded default (Milvus Lite file + SQLite):
# data -> train -> index -> profiles -> serve on :8000. A second run reuses what exists.
demo: install
	$(VENV)/bin/recsys demo
