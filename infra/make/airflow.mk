# Airflow: the scheduler/UI that runs goodnote_pipeline (infra/airflow.sh).
#   make airflow-start                      PostgreSQL + Airflow; prints the URL and where the users' passwords are
#   PIPELINE_SPARK_MASTER=yarn make airflow-start   same, every stage goes to the project's YARN
#   make airflow-run START=2023-07-01 END=2023-07-03            one DAG run over the range, waits
#   make airflow-backfill START=2023-07-01 END=2023-07-03       Airflow backfill, one run per date
#   make airflow CMD="dags list"            any airflow CLI command, configured for this project
.PHONY: airflow-install airflow-start airflow-stop airflow-status airflow-run airflow-backfill airflow

airflow-install:
	bash infra/airflow.sh install

airflow-start:
	bash infra/airflow.sh start

airflow-stop:
	bash infra/airflow.sh stop

airflow-status:
	bash infra/airflow.sh status

airflow-run:
	@test -n "$(START)" || { echo "usage: make airflow-run START=YYYY-MM-DD [END=YYYY-MM-DD] [CONF='{...}']"; exit 2; }
	$(PY) infra/airflow/trigger.py --start-date $(START) --end-date $(or $(END),$(START)) --conf '$(or $(CONF),{})'

airflow-backfill:
	@test -n "$(START)" || { echo "usage: make airflow-backfill START=YYYY-MM-DD END=YYYY-MM-DD [CONF='{...}']"; exit 2; }
	$(PY) infra/airflow/trigger.py --backfill --start-date $(START) --end-date $(or $(END),$(START)) --conf '$(or $(CONF),{})'

airflow:
	bash infra/airflow.sh cli $(CMD)

# LastFM: `make lastfm-data` writes the dump the lastfm_sessions DAG reads by default;
# `make lastfm-run` triggers the DAG and waits.
#   make lastfm-data PLAYS=19150868
#   make lastfm-run CONF='{"session_gap_seconds": 1800, "top_sessions": 20}'
PLAYS ?= 19150868
LASTFM_DUMP = $(DATA_OUT)/lastfm/userid-timestamp-artid-artname-traid-traname.tsv
.PHONY: lastfm-data lastfm-run
lastfm-data:
	mkdir -p $(dir $(LASTFM_DUMP))
	$(PY) -m datagen.lastfm --out $(LASTFM_DUMP) --plays $(PLAYS) --seed $(SEED)

lastfm-run:
	$(PY) infra/airflow/trigger.py --dag lastfm_sessions --conf '$(or $(CONF),{})'
