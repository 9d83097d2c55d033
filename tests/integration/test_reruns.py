"""Re-running dates never duplicates, and a day-by-day backfill equals one full run."""
from __future__ import annotations

from iceberg_catalog.tables import STAGE_OUTPUTS, TABLES
from tests.assertions import assert_rows
from tests.conftest import drop_pipeline_tables, run_pipeline

PUBLISHED = [t for tables in STAGE_OUTPUTS.values() for t in tables]
DATES = ["2023-07-01", "2023-07-02", "2023-07-03", "2023-07-04"]


def _snapshot(spark) -> dict:
    return {t: (spark.table(TABLES[t].identifier).columns, [tuple(r) for r in spark.table(TABLES[t].identifier).collect()])
            for t in PUBLISHED}


def _assert_same_tables(spark, before: dict) -> None:
    for table, (columns, rows) in before.items():
        df = spark.table(TABLES[table].identifier)
        try:
            assert_rows(df, columns, rows)
        except AssertionError as e:
            raise AssertionError(f"{table} differs: {e}") from None


def test_rerunning_a_date_leaves_every_table_identical(spark, pipeline_run):
    before = _snapshot(spark)
    run_pipeline(pipeline_run["run_id"], pipeline_run["landing"], "--start-date", DATES[1], "--end-date", DATES[1])
    _assert_same_tables(spark, before)


def test_day_by_day_backfill_equals_one_full_run(spark, pipeline_run):
    full = _snapshot(spark)
    drop_pipeline_tables(spark)
    for day in DATES:
        run_pipeline(pipeline_run["run_id"], pipeline_run["landing"], "--start-date", day, "--end-date", day)
    _assert_same_tables(spark, full)
