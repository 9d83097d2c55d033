# Quality gates (Great Expectations on Iceberg branches, run inside each stage) and their Data Docs.
#   make datadocs-start        serve .local/data_docs on DATA_DOCS_PORT; prints the URL
#   make datadocs-stop
#   make quality-test          integration tests of the gates (real Spark, Iceberg, PostgreSQL)
.PHONY: datadocs-start datadocs-stop datadocs-status quality-test

datadocs-start:
	bash infra/datadocs.sh start

datadocs-stop:
	bash infra/datadocs.sh stop

datadocs-status:
	bash infra/datadocs.sh status

quality-test:
	$(PY) -m pytest -q tests/integration/test_quality_gates.py tests/unit/test_quality_suites.py
