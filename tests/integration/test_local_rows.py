"""Rows built in Python reach Spark as Arrow with the table's types and values:
naive datetimes stay the UTC times they are, whatever the machine's zone."""
from __future__ import annotations

import datetime as dt
import time

from iceberg_catalog.tables import JOB_RUNS
from spark_jobs.common import local_rows


def test_local_rows_keep_the_tables_types_and_values(spark, monkeypatch):
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        started = dt.datetime(2026, 12, 8, 1, 2, 3, 456789)
        df = local_rows(spark, [("r1", "enrich", started, None, "running", 990000, None, 0, '{"a": 1}')], JOB_RUNS)
        assert [(f.name, f.dataType.simpleString()) for f in df.schema.fields] == [
            ("run_id", "string"), ("job", "string"), ("started_at", "timestamp"), ("finished_at", "timestamp"),
            ("status", "string"), ("rows_in", "bigint"), ("rows_out", "bigint"), ("rows_rejected", "bigint"),
            ("metrics_json", "string")]
        assert df.selectExpr("CAST(started_at AS STRING) AS s", "finished_at IS NULL AS no_end",
                             "rows_in", "rows_out IS NULL AS no_out").collect()[0].asDict() == {
            "s": "2026-12-08 01:02:03.456789", "no_end": True, "rows_in": 990000, "no_out": True}
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
