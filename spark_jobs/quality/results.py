"""ops.quality_results: one row per expectation per table per gate run, an
Iceberg table like any other so quality history is plain SQL (Spark, Trino,
PyIceberg). Written straight to main: it records the audit, it is not audited.
"""
from __future__ import annotations

import datetime as dt
import json

from pyspark.sql import SparkSession

from spark_jobs.quality.validation import TableValidation

QUALITY_RESULTS = "iceberg.ops.quality_results"
COLUMNS = [
    ("run_id", "STRING NOT NULL"),
    ("stage", "STRING NOT NULL"),
    ("table_name", "STRING NOT NULL"),
    ("branch", "STRING"),
    ("snapshot_id", "BIGINT"),
    ("expectation_type", "STRING NOT NULL"),
    ("expectation", "STRING NOT NULL"),
    ("severity", "STRING NOT NULL"),
    ("success", "BOOLEAN NOT NULL"),
    ("observed_value", "STRING"),
    ("data_docs_page", "STRING"),
    ("validated_at", "TIMESTAMP NOT NULL"),
]
DDL = (
    f"CREATE TABLE IF NOT EXISTS {QUALITY_RESULTS} ("
    + ", ".join(f"{name} {type_}" for name, type_ in COLUMNS)
    + ") USING iceberg PARTITIONED BY (days(validated_at)) "
    "COMMENT 'One row per expectation per table per quality-gate run' "
    "TBLPROPERTIES ('format-version'='2', 'write.parquet.compression-codec'='zstd')"
)
SCHEMA = ", ".join(f"{name} {type_.split()[0].lower()}" for name, type_ in COLUMNS)


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


def ensure_table(spark: SparkSession) -> None:
    spark.sql("CREATE NAMESPACE IF NOT EXISTS iceberg.ops")
    try:
        spark.sql(DDL)
    except Exception as exc:  # two gates creating it at once: the other one won
        if "AlreadyExists" not in str(exc) and "already exists" not in str(exc):
            raise


def append_results(spark: SparkSession, rows: list[tuple]) -> None:
    """Appends to main (the gate session never sets spark.wap.branch); Iceberg retries the commit if a parallel gate appended first."""
    if not rows:
        return
    ensure_table(spark)
    spark.createDataFrame(rows, SCHEMA).writeTo(QUALITY_RESULTS).append()


def stage_passed_before(spark: SparkSession, run_id: str, stage: str) -> bool:
    """Whether an earlier gate run of this run id and stage passed every error
    expectation (then its branch is gone because it was published)."""
    if not spark.catalog.tableExists(QUALITY_RESULTS):
        return False
    latest = spark.sql(f"""
        SELECT validated_at, bool_and(success OR severity <> 'error') AS passed
        FROM {QUALITY_RESULTS} WHERE run_id = '{_sql_str(run_id)}' AND stage = '{_sql_str(stage)}'
        GROUP BY validated_at ORDER BY validated_at DESC LIMIT 1""").collect()
    return bool(latest and latest[0]["passed"])


def _sql_str(value: str) -> str:
    return value.replace("'", "''")
