# Rasa voice assistant. `make help` lists the targets; `make run` and `make test` bootstrap themselves.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
RASA := $(BIN)/rasa

# Optional local settings (see .env.example); plain KEY=value lines, exported to the servers.
-include .env
export $(shell sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' .env 2>/dev/null)

# Defaults that work on one machine with no configuration at all.
export RASA_TELEMETRY_ENABLED ?= false
export RASA_PORT ?= 5005
export ACTION_PORT ?= 5055
export ACTION_ENDPOINT_URL ?= http://localhost:$(ACTION_PORT)/webhook
export RASA_URL ?= http://localhost:$(RASA_PORT)
export DB_DIALECT ?= sqlite
export DATABASE_URL ?= sqlite:///var/tracker.db
export REMINDER_DB_URL ?= sqlite:///var/reminders.db
# Rasa's lock store: in_memory on one machine; channels.lock_store.AtomicRedisLockStore (with REDIS_*) for several workers.
export LOCK_STORE_TYPE ?= in_memory
export REDIS_HOST ?= localhost
export REDIS_PORT ?= 6379
export REDIS_DB ?= 1
export REDIS_PASSWORD ?=
# Due reminders of phone callers who are not on a call are delivered by calling them back.
export REMINDER_DELIVERY ?= channels.twilio.callbacks:delivery
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONDONTWRITEBYTECODE ?= 1

STAMP_HASH := $(shell cat requirements/lock.txt requirements/rasa.txt 2>/dev/null | sha1sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(STAMP_HASH)

.PHONY: help install system-deps train run test test-py lint format validate test-core test-nlu \
	shell bench lock clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)

install: $(STAMP) ## Create .venv and install the pinned lock (runs once per lock change)

$(STAMP): requirements/lock.txt requirements/rasa.txt
	@scripts/bootstrap.sh

system-deps: ## Install the Debian packages the tests need (espeak-ng, sox, chromium)
	@scripts/system-deps.sh

train: install ## Train a model (skipped by rasa when data and config are unchanged)
	@mkdir -p var
	$(RASA) train --domain domain.yml --data data --config config.yml --out models

run: install train ## Start the action server and Rasa (REST + voice channels); Ctrl-C stops both
	@scripts/run.sh

test: install system-deps lint validate train test-py test-core test-nlu ## Everything CI runs
	@echo "==> make test: all checks passed"

test-py: install ## Run pytest (unit, channel, e2e; real models and servers on loopback)
	@scripts/pytest.sh

lint: install ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## Format and autofix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

validate: install ## rasa data validate
	$(RASA) data validate --domain domain.yml --data data --config config.yml

test-core: train ## rasa test core on tests/test_stories.yml, failing on any prediction error
	$(RASA) test core --model models --stories tests/test_stories.yml \
		--fail-on-prediction-errors --out var/results/core

test-nlu: train ## NLU evaluation on the held-out tests/nlu_holdout.yml (fails below 90% accuracy)
	$(RASA) test nlu --model models --nlu tests/nlu_holdout.yml --out var/results/nlu
	$(BIN)/python -m tests.check_nlu_report var/results/nlu/intent_report.json --min-accuracy 0.90

shell: train ## Talk to the assistant in the terminal (starts the action server too)
	@scripts/shell.sh

bench: train system-deps ## Benchmarks: print latency, capacity and accuracy figures (B="nlu engine")
	$(BIN)/python -m bench $(B)

lock: ## Re-resolve requirements/base.in into the pinned requirements/lock.txt
	@scripts/lock.sh

clean: ## Remove trained models and run-time data (keeps .venv)
	rm -rf models var results .pytest_cache .ruff_cache
