#!/usr/bin/env bash
# make demo: every service, realistic data, one Airflow DAG run over all the
# generated dates, then what was published and where to look at it.
. "$(dirname "$0")/lib.sh"
ensure_platform_env
cd "$PLATFORM_HOME"
PY="$PLATFORM_HOME/.venv/bin/python"
: "${DEMO_EVENTS:=300000}" "${DEMO_DAYS:=35}" "${DEMO_START:=2023-07-01}"
DEMO_END="$(date -d "$DEMO_START + $((DEMO_DAYS - 1)) days" +%F)"
export LANDING_DIR="$PLATFORM_STATE/landing"

bash infra/postgres.sh start
log "generating $DEMO_EVENTS realistic events over $DEMO_START..$DEMO_END into $LANDING_DIR"
"$PY" -m datagen --mode realistic --out "$LANDING_DIR" --events "$DEMO_EVENTS" \
  --start-date "$DEMO_START" --days "$DEMO_DAYS" --seed 42 >/dev/null
bash infra/hadoop.sh start
bash infra/kafka.sh start
bash infra/datadocs.sh start
bash infra/trino.sh start
bash infra/superset.sh start
# The demo's stages run on the project's YARN (PIPELINE_SPARK_MASTER=local[*] for local mode).
export PIPELINE_SPARK_MASTER="${PIPELINE_SPARK_MASTER:-yarn}"
# The demo data is historical: without this, unpausing the DAG schedules a run for
# yesterday, a date with no events, which its gate would (rightly) refuse.
export AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE=False
bash infra/airflow.sh start

log "triggering goodnote_pipeline over $DEMO_START..$DEMO_END through Airflow"
"$PY" infra/airflow/trigger.py --start-date "$DEMO_START" --end-date "$DEMO_END" --conf '{}'

echo
"$PY" -m iceberg_catalog.summary
echo
make -s trino-demo

ensure_platform_env
cat <<TXT

== where to look ==
Airflow UI         http://localhost:${AIRFLOW_PORT}   user admin, password ${AIRFLOW_ADMIN_PASSWORD}; users operator and viewer: passwords in .local/platform.env
YARN UI            $(bash infra/hadoop.sh env | sed -n 's/^export YARN_RM_URL=//p' | tr -d "'\"")
Spark History      $(bash infra/hadoop.sh env | sed -n 's/^export SPARK_HISTORY_URL=//p' | tr -d "'\"")
Data Docs          $(bash infra/datadocs.sh url)
Kafka              127.0.0.1:${KAFKA_PORT}   topic interactions: make kafka-produce replays the demo's events
Trino              https://localhost:${TRINO_PORT}   bin/trino (analyst); password in .local/platform.env
Superset           http://localhost:${SUPERSET_PORT}   user admin, password ${SUPERSET_ADMIN_PASSWORD}; dashboards: Executive overview, Engagement, App performance, Sessions, Data quality
Stop everything:   make down
TXT
