"""
### GoodNote analytics pipeline

Daily run over the event dates of the landing files. Every stage is one
`spark-submit` of `spark_jobs/<stage>.py` that writes its Iceberg tables to
the run's branch `wap_<run id>`, audits exactly the rows it rewrote there
with its Great Expectations suites, and only then publishes the branch to
`main` (write-audit-publish), all in one Spark application.

    ingest -> enrich -> engagement
                     -> performance
                     -> sessions

**A blocked gate** fails its task without retry: the task log lists the
failed expectations, *Extra links > Data Docs* opens the validation, `main`
is untouched and the branch is kept; downstream tasks do not run. Any other
failure is a fault and is retried. A table's asset event means it was
published.

**Dates.** The scheduled run of date D (data interval [D, D+1)) processes D;
a backfill from A to B makes one such run per date. In the trigger form, set
`start_date` (and `end_date`, inclusive) to process a date or a range, or
`full_refresh` for every date; without them a manual run processes the last
complete day before its logical date (Airflow's rule for data intervals).
Re-running a date overwrites its partitions, never appends a copy. Every
stage option is in the form, grouped by stage, with its default.

**Spark master.** The `spark_default` connection: `local[*]` unless Airflow
was started with `PIPELINE_SPARK_MASTER=yarn`.

**Re-run a stage by hand.** Each task's log has a `Spark-Submit cmd:` line;
paste it in a shell at the repository root (venv active).
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable

from pipeline_tasks import PIPELINES, TASK_DEFAULTS, stage_tasks, trigger_form

STAGES = PIPELINES["goodnote_pipeline"]

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
    default_args={**TASK_DEFAULTS, "execution_timeout": timedelta(hours=2)},
    params=trigger_form(STAGES),
) as dag:
    stage_tasks(STAGES)
