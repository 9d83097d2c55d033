"""The join-stage figures ops.job_runs records (spark_jobs.common.stage_metrics)."""
from __future__ import annotations

import json
import urllib.request

from spark_jobs.common import stage_metrics


def test_stage_metrics_are_the_figures_the_rest_api_serves(spark):
    sc = spark.sparkContext
    group = "test-stage-metrics"
    sc.setJobGroup(group, "stage metrics", True)
    try:
        spark.range(0, 200_000, numPartitions=4).selectExpr("id % 97 AS k").groupBy("k").count().collect()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
        sc.setLocalProperty("spark.job.description", None)
    # Asked right after the action, as the enrich job asks: stage_metrics waits for the
    # listener bus, so the REST API below reads the same, complete store.
    metrics = stage_metrics(spark, group)

    api = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}"

    def get(path: str):
        with urllib.request.urlopen(api + path, timeout=60) as resp:
            return json.load(resp)

    stage_ids = {s for j in get("/jobs") if j.get("jobGroup") == group for s in j["stageIds"]}
    stages = [s for sid in stage_ids for s in get(f"/stages/{sid}") if s["status"] == "COMPLETE"]
    widest = max(stages, key=lambda s: (s["numTasks"], s["executorRunTime"]))
    median, maximum = get(f"/stages/{widest['stageId']}/{widest['attemptId']}/taskSummary?quantiles=0.5,1.0")[
        "executorRunTime"]

    assert metrics == {
        "available": True,
        "stages": len(stages),
        "shuffle_read_bytes": sum(s["shuffleReadBytes"] for s in stages),
        "shuffle_write_bytes": sum(s["shuffleWriteBytes"] for s in stages),
        "spill_bytes": sum(s["memoryBytesSpilled"] + s["diskBytesSpilled"] for s in stages),
        "widest_stage_id": widest["stageId"],
        "widest_stage_tasks": 4,
        "widest_stage_task_ms_median": median,
        "widest_stage_task_ms_max": maximum,
        "widest_stage_max_median_ratio": round(maximum / median, 3) if median else None,
    }
    assert sum(s["shuffleWriteBytes"] for s in stages) > 0  # the aggregation's shuffle is counted


def test_stage_metrics_of_a_group_that_ran_nothing_are_unavailable(spark):
    assert stage_metrics(spark, "no-such-group") == {"available": False}
