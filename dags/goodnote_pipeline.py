"""
### GoodNote analytics pipeline

Daily run over the event dates of the landing files. Every stage is one
`spark-submit` of `spark_jobs/<stage>.py` writing its Iceberg tables to the
run's branch `wap_<run id>`; the `gate_<stage>` task after it audits that
branch and publishes it to `main` (write-audit-publish).

    ingest -> gate_ingest -> enrich -> gate_enrich -> engagement  -> gate_engagement
                                                   -> performance -> gate_performance
                                                   -> sessions    -> gate_sessions

**Dates.** The scheduled run of date D (data interval [D, D+1)) processes D;
a backfill from A to B makes one such run per date. In the trigger form, set
`start_date` (and `end_date`, inclusive) to process a date or a range, or
`full_refresh` for every date; without them a manual run processes the last
complete day before its logical date (Airflow's rule for data intervals).
Re-running a date overwrites its partitions, never appends a copy.

**Spark master.** The `spark_default` connection: `local[*]` unless Airflow
was started with `PIPELINE_SPARK_MASTER=yarn`.

**Re-run a stage by hand.** Each task's log has a `Spark-Submit cmd:` line;
paste it in a shell at the repository root (venv active).
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, Param

from pipeline_tasks import ENRICH_OPTIONS, SparkJobOperator, stage_assets
from quality_gate_operator import QualityGateOperator

DATE = {"type": ["null", "string"], "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}

with DAG(
    dag_id="goodnote_pipeline",
    doc_md=__doc__,
    # A data-interval timetable: the run of D covers [D, D+1) and starts after
    # D ends. (A bare "@daily" is a trigger timetable in Airflow 3: no interval.)
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.datetime(2023, 1, 1, tz="UTC"),
    catchup=False,
    # Stages of two runs would commit to the same Iceberg tables; one run at a time.
    max_active_runs=1,
    tags=["goodnote", "spark", "iceberg"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
        "execution_timeout": timedelta(hours=2),
    },
    params={
        "start_date": Param(None, **DATE, description="First event date (inclusive); overrides the data interval."),
        "end_date": Param(None, **DATE, description="Last event date (inclusive); defaults to start_date."),
        "full_refresh": Param(False, type="boolean", description="Process every date in the landing zone."),
        "broadcast_max_bytes": Param(None, type=["null", "integer"], minimum=0,
                                     description="enrich: broadcast user_dim when smaller than this."),
        "hot_key_min_share": Param(None, type=["null", "number"], minimum=0, maximum=1,
                                   description="enrich: share of rows that makes a user_id a hot key."),
        "salt_buckets": Param(None, type=["null", "integer"], minimum=1, maximum=4096,
                              description="enrich: salt buckets per hot key."),
    },
) as dag:
    def stage(name: str, **kwargs) -> SparkJobOperator:
        return SparkJobOperator(task_id=name, job=name, outlets=stage_assets(name), **kwargs)

    def gate(name: str) -> QualityGateOperator:
        # Quality gate: audits the run's branch, then fast-forwards main to it; "Data Docs" link.
        return QualityGateOperator(stage=name)

    ingest, enrich = stage("ingest"), stage("enrich", options=ENRICH_OPTIONS)
    ingest >> gate("ingest") >> enrich >> (gate_enrich := gate("enrich"))
    for gold in ("engagement", "performance", "sessions"):
        gate_enrich >> stage(gold) >> gate(gold)
