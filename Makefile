# The project's vocabulary. Every target installs what it needs on first use:
# a pinned uv in .tools/, then the locked environment in .venv/.
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv
STAMP := $(VENV)/.synced
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test test-fast coverage lint format typecheck bench invoke requirements build build-host clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# Bytecode compiled once at install, so no command's first run compiles the libraries.
$(STAMP): $(UV) pyproject.toml uv.lock
	UV_COMPILE_BYTECODE=1 $(UV) sync --frozen --python $(PYTHON) --quiet
	touch $(STAMP)

## run: one rebalance of the embedded default (simulated broker, bundled prices)
run: $(STAMP)
	$(VENV)/bin/alchemiser run $(ARGS)

## test: the whole suite: lint, types, the default tests with the coverage gate (at
## least 90% of the pure core, domain/ and portfolio/), then the slow suites (property,
## fuzz and differential tests), which run without coverage tracing to stay fast
test: $(STAMP) lint typecheck
	$(VENV)/bin/pytest -q -m "not slow" --cov=alchemiser.domain --cov=alchemiser.portfolio \
		--cov-report=term-missing:skip-covered --cov-fail-under=90
	$(VENV)/bin/pytest -q -m slow

## coverage: line and branch coverage of the whole package (HTML in htmlcov/)
coverage: $(STAMP)
	$(VENV)/bin/pytest -q --cov=alchemiser --cov-report=term-missing:skip-covered --cov-report=html

## test-fast: unit tests only, no slow suites
test-fast: $(STAMP)
	$(VENV)/bin/pytest -q -m "not slow and not integration" tests/unit

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

## bench: benchmarks that print numbers (never asserted in tests)
bench: $(STAMP)
	$(VENV)/bin/python bench/bench_diff_risk.py
	$(VENV)/bin/python bench/bench_symphony.py
	$(VENV)/bin/python bench/bench_alpaca.py
	$(VENV)/bin/python bench/bench_coldstart.py
	$(VENV)/bin/python bench/bench_prices.py
	$(VENV)/bin/python bench/bench_evaluate.py
	$(VENV)/bin/python bench/bench_backtest.py

## invoke: the stack's real Lambda handlers, each in a fresh process, on a real event,
## against the template's resources in a local moto server (no Docker): orchestrator ->
## worker, metrics, ledger rows, SNS, queue depths. It runs the demo config
## (--env ALCHEMISER_CONFIG=builtin:default; --alpaca sets its own). EVENT=events/stale_data.json,
## ARGS="--repeat 2" (a repeat is answered from idempotency), ARGS="--alpaca",
## ARGS="--env ALCHEMISER_CONFIG=" (a stack not configured yet: the run is recorded as skipped)
invoke: $(STAMP)
	$(VENV)/bin/alchemiser invoke $(or $(EVENT),events/market_open.json) \
	  $(if $(findstring --alpaca,$(ARGS)),,--env ALCHEMISER_CONFIG=builtin:default) $(ARGS)

## requirements: the runtime requirements, exported from the lock with their hashes
## (make build installs the layer from the same export, so only the locked files install)
requirements: $(UV)
	$(UV) export --frozen --no-dev --no-emit-project --quiet > src/requirements.txt

## build: the deployable stack, with any local Python and no Docker (never `sam build`):
## the locked dependencies once, for python3.12 on arm64, in the layer build/layer/
## (without pandas), each function's code in build/functions/<LogicalId>/ (without the
## dev-only modules), and .aws-sam/build/template.yaml pointing at them, which plain
## `sam deploy` reads. Prints each one's size, unzipped and zipped.
build: $(STAMP)
	$(VENV)/bin/python -m alchemiser.devstack.artifact --uv $(UV)

## build-host: the same layer and functions for this machine's Python and platform, in
## build-host/ (never deployed), to run the built code locally:
## `make invoke ARGS="--artifact build-host"`
build-host: $(STAMP)
	$(VENV)/bin/python -m alchemiser.devstack.artifact --uv $(UV) --host --out build-host

clean:
	rm -rf build build-host .aws-sam $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache .coverage .alchemiser
