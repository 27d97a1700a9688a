# FlakeGuard — two commands: `make up` starts the system, `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.9

.PHONY: up test lint typecheck check services node-deps bench clean lock

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# Bytecode is compiled at install time: where PYTHONDONTWRITEBYTECODE is set (or the venv is read-only)
# Python never caches it, and every command then compiles its imports again (`flakeguard --help`:
# 5.6 s of CPU instead of 0.3 s; bench/bench_cli_startup.py).
$(VENV)/.runtime: $(BIN)/uv requirements.lock pyproject.toml
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m compileall -q src
	touch $@

$(VENV)/.dev: $(BIN)/uv requirements-dev.lock pyproject.toml
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements-dev.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m compileall -q src
	touch $@ $(VENV)/.runtime

## Start the whole system on embedded defaults (SQLite + a Redis it starts itself). Ctrl-C stops it.
up: $(VENV)/.runtime
	$(BIN)/flakeguard up

## Start Redis and PostgreSQL where they are not running.
services:
	bash scripts/ensure-services.sh

## Node BullMQ for the wire-compatibility test.
node-deps:
	@if command -v npm >/dev/null 2>&1; then npm ci --silent --no-audit --no-fund --prefix tests/interop; \
	else echo "npm not found: the Node interop test will be skipped"; fi

## Run the whole test suite on real Redis and PostgreSQL.
test: $(VENV)/.dev services node-deps
	$(BIN)/pytest -q

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench

typecheck: $(VENV)/.dev
	$(BIN)/mypy src

check: lint typecheck test

bench: $(VENV)/.dev services
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

## Re-resolve the lock files from pyproject.toml.
lock: $(BIN)/uv
	$(BIN)/uv pip compile --quiet pyproject.toml -o requirements.lock
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev -o requirements-dev.lock

clean:
	rm -rf $(VENV) .flakeguard .pytest_cache .mypy_cache .ruff_cache tests/interop/node_modules
