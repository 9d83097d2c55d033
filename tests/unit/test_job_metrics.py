"""The join-stage figures ops.job_runs records (spark_jobs.common.stage_metrics),
checked on a job whose shape and skew are known in advance."""
from __future__ import annotations

import operator
import time

from spark_jobs.common import stage_metrics

SLOW_TASK_S = 4


def test_stage_metrics_find_the_slow_task_of_the_widest_stage(spark):
    def slow_first_partition(index, rows):  # nested: pickled by value for the Python workers
        if index == 0:
            time.sleep(SLOW_TASK_S)
        return rows

    sc = spark.sparkContext
    sc.parallelize(range(4), 4).map(lambda x: x).collect()  # Python workers started (and reused) before the timed job
    group = "test-stage-metrics"
    sc.setJobGroup(group, "stage metrics", True)
    try:
        # Two stages: 4 map tasks (partition 0 sleeps) writing a shuffle, 2 reduce tasks reading it.
        counts = (sc.parallelize(range(4000), 4).mapPartitionsWithIndex(slow_first_partition)
                  .map(lambda x: (x % 7, 1)).reduceByKey(operator.add, 2).collectAsMap())
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
        sc.setLocalProperty("spark.job.description", None)
    assert counts == {k: len(range(k, 4000, 7)) for k in range(7)}
    metrics = stage_metrics(spark, group)
    assert (metrics["available"], metrics["stages"], metrics["widest_stage_tasks"], metrics["spill_bytes"]) == (
        True, 2, 4, 0)
    # What the map stage wrote is what the reduce stage read.
    assert metrics["shuffle_write_bytes"] > 0 and metrics["shuffle_read_bytes"] == metrics["shuffle_write_bytes"]
    # The slowest task is the sleeping one; the median is one of the three that do not sleep.
    assert metrics["widest_stage_task_ms_max"] >= SLOW_TASK_S * 1000
    assert metrics["widest_stage_task_ms_median"] < SLOW_TASK_S * 1000 / 2
    assert metrics["widest_stage_max_median_ratio"] == round(
        metrics["widest_stage_task_ms_max"] / metrics["widest_stage_task_ms_median"], 3)


def test_stage_metrics_of_a_group_that_ran_nothing_are_unavailable(spark):
    assert stage_metrics(spark, "no-such-group") == {"available": False}
