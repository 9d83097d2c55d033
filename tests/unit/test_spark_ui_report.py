"""bench.eventlog and bench.spark_ui_report on a real Spark event log: per-task figures, and the flag on sort-based aggregates."""
import subprocess
import sys

import pytest

from bench import eventlog, spark_ui_report

APP = """
import sys
from pyspark.sql import SparkSession, functions as F
spark = (SparkSession.builder.master("local[2]").appName("ui-report-test")
         .config("spark.eventLog.enabled", "true").config("spark.eventLog.dir", sys.argv[1])
         .config("spark.ui.enabled", "false").getOrCreate())
rows = spark.range(20000).select((F.col("id") % 100).alias("k"), F.col("id").cast("string").alias("s"))
rows.groupBy("k").agg(F.max("s")).write.format("noop").mode("overwrite").save()    # string buffer: sort aggregate
rows.groupBy("k").agg(F.count("s")).write.format("noop").mode("overwrite").save()  # fixed width: hash aggregate
spark.stop()
"""


@pytest.fixture(scope="module")
def event_log(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("spark-events")
    subprocess.run([sys.executable, "-c", APP, log_dir.as_uri()], check=True, timeout=300)
    [log] = list(log_dir.iterdir())
    return log


def test_only_the_query_with_a_sort_aggregate_is_flagged(event_log):
    app = eventlog.summarize(event_log)
    assert len(app.sort_aggregate_sql) == 1
    flagged = [b for b in spark_ui_report.bottlenecks(app, list(app.stages.values())) if b["kind"] == "sort aggregate"]
    assert len(flagged) == 1 and flagged[0]["figures"].startswith("1 query plans a SortAggregate")
    assert flagged[0]["cost_s"] > 0


def test_per_task_shuffle_reads_add_up_to_sparks_stage_totals(event_log):
    # Spark's own per-stage sums, from the stage-completed events' accumulators.
    stage_totals = {}
    for e in eventlog.read_events(event_log):
        if e.get("Event") == "SparkListenerStageCompleted":
            info = e["Stage Info"]
            stage_totals[info["Stage ID"]] = sum(
                a.get("Value") or 0 for a in info.get("Accumulables", [])
                if a.get("Name") in ("internal.metrics.shuffle.read.localBytesRead",
                                     "internal.metrics.shuffle.read.remoteBytesRead"))
    reading = [s for s in eventlog.summarize(event_log).stages.values() if s.shuffle_read_bytes]
    assert len(reading) == 2   # the two aggregations' reduce stages
    for s in reading:
        assert len(s.task_shuffle_read_bytes) == len(s.task_run_ms)
        assert sum(s.task_shuffle_read_bytes) == stage_totals[s.stage_id] > 0
        assert s.as_dict()["task_shuffle_read_bytes_median"] > 0
