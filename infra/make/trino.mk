# Trino: SQL over the published Iceberg tables (infra/trino.sh, bin/trino).
#   make trino-start                      start (HTTPS on $TRINO_PORT), waits until ready
#   make trino-cli                        interactive CLI as analyst on iceberg.gold
#   make trino-query Q=latest_anomalies   run one saved query (iceberg_catalog/saved_queries/Q.sql)
#   make trino-demo                       two saved queries + how to connect (end of `make demo`)
#   make trino-maintenance                optimize / expire snapshots / remove orphans on every table
#   make trino-stop                       stop the server (and a test instance left running)
.PHONY: trino-install trino-start trino-stop trino-status trino-cli trino-query trino-demo trino-info trino-maintenance trino-test

TRINO_DEMO_QUERIES ?= dau_stickiness p95_load_time_by_app_version

trino-install:
	bash infra/trino.sh install

trino-start:
	bash infra/trino.sh start

trino-stop:
	-TRINO_HOME=$(CURDIR)/.local/trino-test bash infra/trino.sh stop
	bash infra/trino.sh stop

trino-status:
	bash infra/trino.sh status

trino-cli:
	bin/trino

trino-query:
	@test -n "$(Q)" || { echo "usage: make trino-query Q=<name>; saved queries:"; ls iceberg_catalog/saved_queries | sed 's/\.sql$$//;s/^/  /'; exit 2; }
	bin/trino --output-format ALIGNED -f iceberg_catalog/saved_queries/$(Q).sql

trino-demo: trino-start
	@for q in $(TRINO_DEMO_QUERIES); do \
	  echo; echo "== $$q (iceberg_catalog/saved_queries/$$q.sql)"; \
	  bin/trino --output-format ALIGNED -f iceberg_catalog/saved_queries/$$q.sql </dev/null || exit 1; \
	done
	@echo; bash infra/trino.sh connect-info

trino-info:
	@bash infra/trino.sh connect-info

trino-maintenance: trino-start
	$(PY) -m iceberg_catalog.maintenance

trino-test:
	bash infra/postgres.sh start
	$(PY) -m pytest tests/e2e/test_trino.py -v -p no:cacheprovider $(PYTEST_ARGS)
