# The verbs a person types. Everything installs into ./.venv with a pinned uv.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin
# Write .pyc files at install time: without them every process recompiles large packages.
export UV_COMPILE_BYTECODE := 1
export UV_PYTHON_DOWNLOADS := never
# Node 20 works for synthesis; jsii only warns that it has reached end of life.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: help install demo test lint typecheck bench eval synth clean

help:
	@echo "make demo   install everything and run the demo on the embedded local PostgreSQL"
	@echo "make test   every gate: ruff, mypy, import contracts, pytest (unit, integration, infra, e2e)"
	@echo "make eval   the golden cases (scripted models) with a table, JSON report and chart"
	@echo "make bench  benchmarks (results in bench/results)"
	@echo "make synth  install the pinned CDK CLI and synthesize every stack (no Docker needed)"

$(UV):
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(BIN)/lockgate: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --quiet
	@touch $@

install: $(BIN)/lockgate

demo: install
	$(BIN)/lockgate demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

bench: install
	$(BIN)/python -m bench.run_all

eval: install
	$(BIN)/lockgate eval

node_modules/.bin/cdk: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

synth: install node_modules/.bin/cdk
	npx cdk synth --quiet

clean:
	rm -rf .tools $(VENV) .lockgate cdk.out node_modules .pytest_cache .mypy_cache .ruff_cache
