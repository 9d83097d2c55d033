"""Re-running dates never duplicates, and a day-by-day backfill equals one full run."""
from __future__ import annotations

from spark_jobs.pipeline import STAGES, TABLES
from tests.assertions import assert_rows
from tests.conftest import GOODNOTE_DATASETS, drop_goodnote_tables, run_pipeline

PUBLISHED = [t for stage in STAGES for t in stage.tables]
DATES = ["2023-07-01", "2023-07-02", "2023-07-03", "2023-07-04"]


def _table(spark, table: str):
    # bronze.rejected_rows names the run that wrote each row; the rows are what must not change.
    df = spark.table(TABLES[table].identifier).drop("run_id")
    if table == "bronze.rejected_rows":  # shared with the LastFM pipeline, which these runs leave alone
        df = df.where(f"dataset IN {GOODNOTE_DATASETS}")
    return df


def _snapshot(spark) -> dict:
    return {t: (_table(spark, t).columns, [tuple(r) for r in _table(spark, t).collect()]) for t in PUBLISHED}


def _assert_same_tables(spark, before: dict) -> None:
    for table, (columns, rows) in before.items():
        df = _table(spark, table)
        try:
            assert_rows(df, columns, rows)
        except AssertionError as e:
            raise AssertionError(f"{table} differs: {e}") from None


def test_rerunning_a_date_through_its_gates_leaves_every_table_identical(spark, pipeline_run):
    # As the DAG re-runs a date: each stage writes a branch, its gate audits the
    # branch against main's other dates and publishes it.
    before = _snapshot(spark)
    run_pipeline("test-rerun", pipeline_run["landing"], "--start-date", DATES[1], "--end-date", DATES[1],
                 "--branch", "wap_rerun")
    _assert_same_tables(spark, before)
    gates = spark.sql("SELECT stage, bool_and(success OR severity <> 'error') AS passed FROM iceberg.ops.quality_results "
                      "WHERE run_id = 'test-rerun' AND branch = 'wap_rerun' GROUP BY stage").collect()
    assert {r.stage: r.passed for r in gates} == {stage.name: True for stage in STAGES}


def test_day_by_day_backfill_equals_one_full_run(spark, pipeline_run):
    full = _snapshot(spark)
    drop_goodnote_tables(spark)
    for day in DATES:
        run_pipeline("test-backfill", pipeline_run["landing"], "--start-date", day, "--end-date", day)
    _assert_same_tables(spark, full)
