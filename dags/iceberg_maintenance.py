"""
### Iceberg table maintenance

Daily at 04:00 UTC, through Trino as the `etl` user: compact small files
(`optimize`), then expire snapshots older than the retention (7 days by
default: how far back analysts can time-travel), then remove orphan files
older than 3 days (younger ones may belong to a Spark job still writing).
Every table the pipelines and the speed layer write is maintained (the live
tables while the stream appends to them); tables not created yet are
skipped. Snapshots a write-audit-publish branch still points to are kept.

Each task is `python -m iceberg_catalog.maintenance --action <action>` at the
repository root; run the same command by hand to maintain one table
(`--table gold.sessions`). Trino must be running (`make trino-start`).
"""
from __future__ import annotations

import os
import sys
from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, CronTriggerTimetable, Param

# The repository root: the maintenance module and its settings live there.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACTIONS = ("optimize", "expire_snapshots", "remove_orphan_files")

with DAG(
    dag_id="iceberg_maintenance",
    doc_md=__doc__,
    schedule=CronTriggerTimetable("0 4 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2023, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["iceberg", "trino", "maintenance"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "execution_timeout": timedelta(hours=1),
    },
    params={
        "snapshot_retention": Param("7d", type="string", pattern=r"^\d+(ms|s|m|h|d)$",
                                    description="Keep snapshots younger than this (time-travel window)."),
        "orphan_retention": Param("3d", type="string", pattern=r"^\d+(ms|s|m|h|d)$",
                                  description="Remove unreferenced files older than this."),
    },
) as dag:
    previous = None
    for action in ACTIONS:
        task = BashOperator(
            task_id=action,
            cwd=REPO_ROOT,
            # Params go through the environment, never into the shell text.
            env={
                "SNAPSHOT_RETENTION": "{{ params.snapshot_retention }}",
                "ORPHAN_RETENTION": "{{ params.orphan_retention }}",
            },
            append_env=True,
            bash_command=(
                f"{sys.executable} -m iceberg_catalog.maintenance --action {action} "
                '--snapshot-retention "$SNAPSHOT_RETENTION" --orphan-retention "$ORPHAN_RETENTION"'
            ),
        )
        if previous is not None:
            previous >> task
        previous = task
