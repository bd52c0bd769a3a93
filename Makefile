# qgjob developer commands. `make install` once, then `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
COMPONENTS := contract services/api services/scheduler services/agent-runtime \
	services/agent-emulator services/agent-device services/agent-browserstack cli

.PHONY: install lint typecheck test test-unit test-integration test-e2e mutation up down logs chaos bench bench-quick soak

install: ## .venv with every component (editable, the CLI included) and the dev tools
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt $(addprefix -e ./,$(COMPONENTS))

lint: ## ruff (lint and format check)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: ## mypy --strict over every package
	$(BIN)/mypy

test: lint typecheck ## the test command: lint, type-check, unit, integration and e2e tests
	$(BIN)/pytest

test-unit:
	$(BIN)/pytest tests/unit

test-integration:
	$(BIN)/pytest tests/integration

test-e2e:
	$(BIN)/pytest e2e

mutation: ## mutation testing of the pure-logic modules (tests/mutation/modules.toml); slow, not in `test`
	$(BIN)/python tests/mutation/run.py $(MUTATION_ARGS)  # e.g. MUTATION_ARGS="--jobs 1 --fresh"

up: ## the whole stack, built from this checkout
	docker compose up --build -d --wait

down:
	docker compose down

logs:
	docker compose logs --tail=200

chaos: ## a larger chaos run on a stack of its own (not part of `make test`); last line: JSON
	TESTCONTAINERS_RYUK_DISABLED=true $(BIN)/python -m e2e.chaos

.PHONY: bench-ci
bench-ci: ## CI's run of bench-quick: goals reported, never enforced; fails only if the benchmark crashes
	mkdir -p .bench
	set -o pipefail; $(BIN)/python -m bench --quick --project $${QGJOB_BENCH_PROJECT:-qgjob-bench-ci} | tee .bench/ci-quick.txt
	$(BIN)/python -m bench.goals .bench/ci-quick.txt

bench: ## the benchmark of issue 6 on the real stack (full sizes); last line: one JSON object
	$(BIN)/python -m bench

bench-quick: ## the same workloads, smaller (under 3 minutes)
	$(BIN)/python -m bench --quick

soak: ## 50,000 no-op jobs through the stack with a short retention (not part of `make test`); last line: JSON
	$(BIN)/python -m e2e.soak $(SOAK_ARGS)
