"""
### LastFM listening sessions

The LastFM-1K dump (one TSV file of plays) through two stages, each one
`spark-submit` of `spark_jobs/<stage>.py` that writes its Iceberg tables to
the run's branch `wap_<run id>`, audits them with its Great Expectations
suites and only then publishes them (write-audit-publish):

    lastfm_ingest -> lastfm_sessions

`lastfm_ingest` reads the whole dump (`plays` in the form, default
`$LANDING_DIR/lastfm`) into `bronze.lastfm_plays`, its malformed lines into
`bronze.rejected_rows` with their reason; its Data Docs page has the input
report (lines read, accepted, rejected by reason, duplicate plays, users,
songs). `lastfm_sessions` cuts each user's plays into sessions (a new one
after more than `session_gap_seconds` without a play) and publishes the
`top_sessions` longest in `gold.lastfm_top_sessions` and the `top_songs`
songs played most in them in `gold.lastfm_top_songs`.

No schedule: trigger it when the dump changes. Every run replaces the tables
whole, so a re-run with the same input and form changes nothing. A blocked
gate fails its task without retry (*Extra links > Data Docs*); any other
failure is a fault and is retried.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from pipeline_tasks import PIPELINES, TASK_DEFAULTS, stage_tasks, trigger_form

STAGES = PIPELINES["lastfm_sessions"]

with DAG(
    dag_id="lastfm_sessions",
    doc_md=__doc__,
    schedule=None,
    start_date=pendulum.datetime(2023, 1, 1, tz="UTC"),
    catchup=False,
    # Two runs would replace the same tables; one at a time.
    max_active_runs=1,
    tags=["lastfm", "spark", "iceberg"],
    default_args={**TASK_DEFAULTS, "execution_timeout": timedelta(hours=1)},
    params=trigger_form(STAGES),
) as dag:
    stage_tasks(STAGES)
