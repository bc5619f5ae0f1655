# One virtual environment for everything: the service, training (TensorFlow) and tests.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: install test lint format demo

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train,dev,test-server]'
	touch $@

install: $(VENV)/.installed

# The test command of the README and of CI. pytest's exit 5 (no test collected) is a failure.
test: install
	@$(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: something is wrong" >&2; fi; \
	exit $$rc

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
