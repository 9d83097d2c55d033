"""ops.quality_results: one row per expectation per table per gate run, an
Iceberg table like any other so quality history is plain SQL (Spark, Trino,
PyIceberg). Written straight to main: it records the audit, it is not audited.
"""
from __future__ import annotations

import datetime as dt
import json

from pyspark.sql import SparkSession

from iceberg_catalog.tables import QUALITY_RESULTS, create_tables
from spark_jobs.common import local_rows, retry_on_commit_conflict, sql_str
from spark_jobs.quality.validation import TableValidation


def expectation_json(expectation_type: str, kwargs: dict) -> str:
    return json.dumps({"type": expectation_type, "kwargs": kwargs}, sort_keys=True, default=str)


def result_rows(validation: TableValidation, run_id: str, stage: str, branch: str, snapshot_id: int | None,
                validated_at: dt.datetime) -> list[tuple]:
    return [
        (run_id, stage, validation.table, branch, snapshot_id, o.expectation_type,
         expectation_json(o.expectation_type, o.kwargs), o.severity, o.success, o.observed_value,
         validation.data_docs_page, validated_at)
        for o in validation.outcomes
    ]


@retry_on_commit_conflict
def record_results(spark: SparkSession, run_id: str, stage: str, rows: list[tuple]) -> None:
    """The results of the run's latest audit of the stage: an earlier attempt's
    rows of the same (run id, stage) are deleted first, so a retry adds none twice
    (each attempt's Data Docs page stays). Appends go to main; Iceberg retries
    the commit if a parallel stage appended first."""
    create_tables(spark, [QUALITY_RESULTS])
    spark.sql(f"DELETE FROM {QUALITY_RESULTS.identifier} WHERE run_id = '{sql_str(run_id)}' "
              f"AND stage = '{sql_str(stage)}'")
    if rows:
        local_rows(spark, rows, QUALITY_RESULTS).writeTo(QUALITY_RESULTS.identifier).append()
