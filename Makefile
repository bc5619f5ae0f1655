# Two virtual environments: .venv holds the service and training (TensorFlow), plus the test
# tools once `make install` or `make test` ran (`make demo` alone installs only what the demo
# needs); .venv-serve holds the service and the test tools only, to prove serving needs no
# TensorFlow.
VENV ?= .venv
SERVE_VENV ?= .venv-serve
PY := $(VENV)/bin/python
PYTHON ?= python3
# `make demo PORT=8001 MILVUS_PORT=19531`; unset, the demo takes RECSYS_PORT (8000) and 19530.
PORT ?=
MILVUS_PORT ?=
DEMO_FLAGS := $(if $(PORT),--port $(PORT)) $(if $(MILVUS_PORT),--milvus-port $(MILVUS_PORT))

.PHONY: install install-demo test test-serving lint format audit demo

# What the demo needs: the service and the `train` extra (no test tools, no test Milvus server).
$(VENV)/.demo-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train]'
	touch $@

# Everything: the demo's install plus the test tools and the test-only Milvus server.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train,dev,test-server]'
	touch $@ $(VENV)/.demo-installed

$(SERVE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/python -m pip install -q --upgrade pip
	$(SERVE_VENV)/bin/python -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

install-demo: $(VENV)/.demo-installed

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

# Known vulnerabilities in what the service runs on (the serving install: base + dev extras),
# from the PyPI advisory database. Needs pypi.org's JSON API: not in CI, whose registry mirror
# carries no advisories (README, "Security").
# pip-audit runs from a venv of its own, so its dependencies are not audited with the service's.
audit: $(SERVE_VENV)/.installed
	[ -x .venv-audit/bin/pip-audit ] || { $(PYTHON) -m venv .venv-audit && \
	  .venv-audit/bin/python -m pip install -q pip-audit; }
	.venv-audit/bin/pip-audit --strict --skip-editable --progress-spinner off \
	  --path "$$($(SERVE_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"

# From a fresh clone to a running API on the embedded default (Milvus Lite file + SQLite):
# data -> train -> index -> profiles -> serve on :8000. A second run reuses what exists.
demo: install-demo
	$(VENV)/bin/recsys demo $(DEMO_FLAGS)
