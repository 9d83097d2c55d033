"""bench.spark_ui_report reads a real Spark event log and flags sort-based aggregates."""
import subprocess
import sys

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


def test_only_the_query_with_a_sort_aggregate_is_flagged(tmp_path):
    subprocess.run([sys.executable, "-c", APP, tmp_path.as_uri()], check=True, timeout=300)
    [log] = list(tmp_path.iterdir())
    app = eventlog.summarize(log)
    assert len(app.sort_aggregate_sql) == 1
    flagged = [b for b in spark_ui_report.bottlenecks(app, list(app.stages.values())) if b["kind"] == "sort aggregate"]
    assert len(flagged) == 1 and flagged[0]["figures"].startswith("1 query plans a SortAggregate")
    assert flagged[0]["cost_s"] > 0


def test_per_task_shuffle_reads_add_up_to_the_stage(tmp_path):
    subprocess.run([sys.executable, "-c", APP, tmp_path.as_uri()], check=True, timeout=300)
    [log] = list(tmp_path.iterdir())
    reading = [s for s in eventlog.summarize(log).stages.values() if s.shuffle_read_bytes]
    assert len(reading) == 2   # the two aggregations' reduce stages
    for s in reading:
        assert len(s.task_shuffle_read_bytes) == len(s.task_run_ms)
        assert sum(s.task_shuffle_read_bytes) == s.shuffle_read_bytes
        assert s.as_dict()["task_shuffle_read_bytes_median"] > 0
