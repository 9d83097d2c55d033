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
