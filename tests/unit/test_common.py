"""spark_jobs.common.side_by_side: independent Spark actions from driver threads."""
from __future__ import annotations

import threading

import pytest

from spark_jobs.common import side_by_side


def test_side_by_side_runs_the_actions_together_under_the_callers_job_group(spark):
    sc = spark.sparkContext
    group = "test-side-by-side"
    # Each action waits here for the other: run one after the other, they would time out.
    both_running = threading.Barrier(2, timeout=20)

    def count(n: int) -> int:
        both_running.wait()
        return spark.range(n).where("id % 2 = 0").count()

    sc.setJobGroup(group, "side by side", True)
    try:
        results = side_by_side(spark, lambda: count(10), lambda: count(1000), lambda: "no job")
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
        sc.setLocalProperty("spark.job.description", None)

    assert results == [5, 500, "no job"]
    # Both threads' jobs carry the caller's job group, so the event log and the UI
    # put them in the caller's stage.
    assert len(sc.statusTracker().getJobIdsForGroup(group)) >= 2


def test_side_by_side_finishes_every_action_before_raising_the_first_failure(spark):
    finished = []

    def fails():
        raise ValueError("gold.x: no rows")

    def counts():
        finished.append(spark.range(100).count())

    with pytest.raises(ValueError, match="gold.x: no rows"):
        side_by_side(spark, fails, counts)
    assert finished == [100]


def test_job_runs_recorded_by_stages_side_by_side_are_all_kept(spark):
    """The DAG's gold stages start and end together, each writing its ops.job_runs
    row with a MERGE: a MERGE whose table another one committed to meanwhile is
    done again, so every stage's row is there once with its last status."""
    import uuid

    from spark_jobs.common import JobRun, record_job_run

    ROUNDS = 5
    run_id = f"side-by-side-{uuid.uuid4().hex[:8]}"
    jobs = [f"stage_{i}" for i in range(4)]
    all_started = threading.Barrier(len(jobs), timeout=120)

    def record(job: str) -> None:
        session = spark.newSession()  # a stage's own application, as far as Iceberg can tell
        run = JobRun(job, run_id)
        all_started.wait()
        for rows_out in range(ROUNDS):
            run.rows_out = rows_out
            record_job_run(session, run, "running")
        record_job_run(session, run, "succeeded")

    try:
        side_by_side(spark, *[lambda job=job: record(job) for job in jobs])
        rows = spark.sql(f"SELECT job, status, rows_out FROM iceberg.ops.job_runs WHERE run_id = '{run_id}'").collect()
        assert sorted(tuple(r) for r in rows) == [(job, "succeeded", ROUNDS - 1) for job in jobs]
    finally:
        spark.sql(f"DELETE FROM iceberg.ops.job_runs WHERE run_id = '{run_id}'")
