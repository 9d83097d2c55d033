# Quality gates (Great Expectations on Iceberg branches) and their Data Docs.
#   make datadocs-start        serve .local/data_docs on DATA_DOCS_PORT; prints the URL
#   make datadocs-stop
#   make quality-gate STAGE=ingest RUN_ID=manual_1 BRANCH=wap_manual_1 [START=2023-07-01 END=2023-07-03]
#                              run one gate by hand (what the DAG's gate_<stage> task runs)
#   make quality-test          integration tests of the gates (real Spark, Iceberg, PostgreSQL)
.PHONY: datadocs-start datadocs-stop datadocs-status quality-gate quality-test

datadocs-start:
	bash infra/datadocs.sh start

datadocs-stop:
	bash infra/datadocs.sh stop

datadocs-status:
	bash infra/datadocs.sh status

quality-gate:
	@test -n "$(STAGE)" -a -n "$(RUN_ID)" -a -n "$(BRANCH)" || { echo "usage: make quality-gate STAGE=ingest RUN_ID=ID BRANCH=wap_ID [START=D END=D]"; exit 2; }
	$(PY) -m spark_jobs.quality_gate --stage $(STAGE) --run-id $(RUN_ID) --branch $(BRANCH) \
		$(if $(START),--start-date $(START)) $(if $(END),--end-date $(END))

quality-test:
	$(PY) -m pytest -q tests/integration/test_quality_gates.py tests/unit/test_quality_suites.py
