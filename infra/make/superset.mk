# Superset: the dashboards of infra/superset/assets over Trino (infra/superset.sh).
#   make superset-start     PostgreSQL, Trino, Superset (imports the dashboards); prints URL and user
#   make superset-stop      stop the server (and a test instance left running)
#   make superset-export    after editing dashboards in the UI: write them back to infra/superset/assets
#   make superset-import    re-import infra/superset/assets (what start does) into the running instance
#   make superset-test      the end-to-end test: server, every chart's query, a browser, Data Docs offline
.PHONY: superset-install superset-start superset-stop superset-status superset-export superset-import superset-test

superset-install:
	bash infra/superset.sh install

superset-start: trino-start
	bash infra/superset.sh start
	@echo "Superset: $$(bash infra/superset.sh url)  user admin, password SUPERSET_ADMIN_PASSWORD in .local/platform.env"

superset-stop:
	-SUPERSET_HOME=$(CURDIR)/.local/superset-test bash infra/superset.sh stop
	bash infra/superset.sh stop

superset-status:
	bash infra/superset.sh status

superset-export:
	bash infra/superset.sh export

superset-import: trino-start
	bash infra/superset.sh import

superset-test:
	bash infra/postgres.sh start
	$(PY) -m pytest tests/e2e/test_superset.py -v -p no:cacheprovider $(PYTEST_ARGS)
