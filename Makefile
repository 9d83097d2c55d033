# Entry points for people and CI. See README.md.
SHELL := /bin/bash
PY := .venv/bin/python
DEMO_EVENTS ?= 300000
DEMO_DAYS ?= 35
DEMO_START ?= 2023-07-01
PYTEST_ARGS ?=

.PHONY: bootstrap package demo test down summary

bootstrap:
	bash infra/bootstrap.sh

package:
	@bash infra/package.sh >/dev/null

# The whole flow: services, realistic data, the DAG over every generated date, a summary.
demo: bootstrap package
	DEMO_EVENTS=$(DEMO_EVENTS) DEMO_DAYS=$(DEMO_DAYS) DEMO_START=$(DEMO_START) bash infra/demo.sh

# Tests start the services they need (PostgreSQL, YARN, Trino, Airflow) and use
# their own catalog database, so they never touch the demo's tables.
test: bootstrap package
	bash infra/postgres.sh start
	$(PY) -m pytest tests -v -p no:cacheprovider --durations=25 $(PYTEST_ARGS)

summary:
	$(PY) -m iceberg_catalog.summary

# Stops everything demo or test started.
down:
	-bash infra/airflow.sh stop
	-$(MAKE) -s superset-stop
	-$(MAKE) -s trino-stop
	-bash infra/hadoop.sh stop
	-bash infra/stream.sh stop
	-bash infra/kafka.sh stop
	-bash infra/datadocs.sh stop
	-bash infra/postgres.sh stop

# Each component adds its own targets in infra/make/<component>.mk.
-include infra/make/*.mk
