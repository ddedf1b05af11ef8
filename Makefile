# ews — the two commands first: `make run` (the demo) and `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: run test test-unit test-faults bench kafka kafka-stop install check clean tools lint format

run: $(STAMP)  ## Kafka, the three workers, a webhook receiver, the bundled scenario, a summary
	$(BIN)/ews demo

test: $(STAMP) tools  ## the whole suite (unit + integration) against a real local Kafka broker
	$(BIN)/python -m pytest -q

test-faults: $(STAMP)  ## reliability scenarios (kill -9 of each worker, webhook outage, broker bounce, a broker of three killed, two-worker kill); CI runs them after make test
	$(BIN)/python -m pytest -q -m faults

lint: $(STAMP)  ## the gates CI runs before the tests: ruff (lint and format) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)  ## apply ruff's formatting and its safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

tools:  ## promtool (Debian's prometheus) for the deploy checks, Chromium for the console's browser tests, where they can be installed
	@command -v promtool >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null) ; } || \
	  echo "promtool could not be installed (needs Debian's apt as root); the promtool checks will be skipped"
	@{ [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) ; } || \
	  echo "Chromium could not be installed (needs Debian's apt as root); the console's browser tests will be skipped"

bench: $(STAMP)  ## throughput vs the client's ceiling, backtest speed, latency, memory: a table and bench/results.json
	$(BIN)/python -m bench.run $(BENCH_ARGS)

test-unit: $(STAMP)  ## the fast tests only, no Kafka
	$(BIN)/python -m pytest -q tests/unit

kafka: $(STAMP)  ## start the local broker in the background and print its bootstrap address
	@$(BIN)/ews kafka start

kafka-stop: $(STAMP)  ## stop the local broker
	@$(BIN)/ews kafka stop

check: $(STAMP)  ## check the shipped configuration as operators would
	$(BIN)/ews rules check config/triggers.yaml config/sites.yaml config/contacts.yaml config/sharing.yaml config/contacts.example.yaml

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "ews needs Python 3.11: install python3.11 and run again (or make PYTHON=/path/to/python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,lint]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

clean:
	-$(BIN)/ews kafka stop
	rm -rf $(VENV) .cache .pytest_cache .hypothesis
