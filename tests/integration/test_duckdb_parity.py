"""Parity: every table the Spark pipeline publishes equals, row by row, an
independent DuckDB implementation of docs/tables.md (bench/duckdb_metrics.py).

Floats agree to 1e-9 relative; gold.sessions rows are matched on
(user_id, session_start) since the session_id hash function is open.

Three datasets:
  * the shared `pipeline_run` fixture (realistic, 4 days, malformed rows) on the test catalog;
  * realistic, 40 days in date=/country= folders (anomaly baselines, metadata from the path);
  * challenge mode (uniform draws: many users without metadata, duplicate metadata user ids).
The last two run the pipeline in a child process on their own catalog database
(iceberg_parity), so the session-wide test catalog other tests read is untouched.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench import duckdb_metrics, parity
from tests.conftest import ROOT, generate_landing

PARITY_CATALOG_DB = "iceberg_parity"


def duckdb_tables(landing: Path) -> dict:
    return duckdb_metrics.tables_as_frames(duckdb_metrics.compute_all(landing))


def assert_parity(spark_tables: dict, duck_tables: dict) -> None:
    problems = parity.compare_all(spark_tables, duck_tables)
    lines = [line for found in problems.values() for line in found]
    assert not lines, "Spark and DuckDB disagree:\n" + "\n".join(line[:3000] for line in lines)
    # Accepted + rejected = rows read; both sides reject the same number of rows per dataset.
    spark_rejected = parity.rejected_counts(spark_tables["bronze.rejected_rows"], "dataset")
    duck_rejected = parity.rejected_counts(duck_tables["bronze.rejected_rows"], "source")
    assert spark_rejected == duck_rejected


def spark_tables_in_child(landing: Path, tmp: Path) -> dict:
    """Runs the five jobs over LANDING in a child process on the parity catalog and
    returns their tables (dumped to Parquet by the child)."""
    env = dict(os.environ, ICEBERG_CATALOG_DB=PARITY_CATALOG_DB,
               ICEBERG_WAREHOUSE=str(ROOT / ".local" / "parity-warehouse"),
               SPARK_MASTER=os.environ.get("SPARK_MASTER", "local[2]"),
               SPARK_SHUFFLE_PARTITIONS=os.environ.get("SPARK_SHUFFLE_PARTITIONS", "4"))
    subprocess.run(["bash", str(ROOT / "infra/postgres.sh"), "start"], check=True, env=env)
    dump = tmp / "spark-tables"
    subprocess.run([sys.executable, "-m", "bench.parity", "--run-spark", "--landing", str(landing),
                    "--dump-spark", str(dump)], check=True, cwd=ROOT, env=env)
    return parity.load_dumped_tables(dump)


def test_realistic_fixture_run_matches_duckdb(spark, pipeline_run):
    spark_tables = parity.read_spark_tables(spark)
    duck = duckdb_tables(pipeline_run["landing"])
    # The fixture's data has every kind of malformed row; make sure they were exercised.
    assert len(duck["bronze.rejected_rows"]) > 0
    assert_parity(spark_tables, duck)


def test_realistic_folders_40_days_match_duckdb(tmp_path):
    landing = generate_landing(tmp_path / "landing", "--mode", "realistic", "--events", "40000", "--users", "500",
                               "--days", "40", "--start-date", "2023-05-20", "--seed", "5",
                               "--layout", "date-folders", "--metadata-layout", "country-folders")
    duck = duckdb_tables(landing)
    assert len(duck["gold.usage_anomalies"]) > 0, "40 days should give anomaly rows to compare"
    assert duck["bronze.user_metadata"]["country"].notna().all()
    assert_parity(spark_tables_in_child(landing, tmp_path), duck)


def test_challenge_mode_matches_duckdb(tmp_path):
    landing = generate_landing(tmp_path / "landing", "--mode", "challenge", "--events", "6000", "--users", "3000",
                               "--days", "45", "--start-date", "2023-03-01", "--seed", "11")
    duck = duckdb_tables(landing)
    # Challenge data: most event users have no metadata, several metadata rows share a user_id.
    assert duck["silver.interactions_enriched"]["device_type"].isna().sum() > 0
    assert len(duck["bronze.user_metadata"]) > len(duck["silver.user_dim"])
    assert_parity(spark_tables_in_child(landing, tmp_path), duck)


def test_cohorts_count_every_user_dim_user_of_the_week(tmp_path):
    """Challenge data has users with metadata and no events: they are in their
    join week's cohort all the same (docs/tables.md), so the cohorts' sizes add up to
    every silver.user_dim user who joined in W-25 .. W."""
    landing = generate_landing(tmp_path / "landing", "--mode", "challenge", "--events", "3000", "--users", "3000",
                               "--days", "20", "--start-date", "2023-03-01", "--seed", "3")
    con = duckdb_metrics.compute_all(landing)
    sizes = con.execute("SELECT sum(cohort_size) FROM gold_cohort_retention WHERE week_offset = 0").fetchone()[0]
    in_window = """
        FROM silver_user_dim d, (SELECT date_trunc('week', max(event_date)) w FROM silver_interactions_enriched)
        WHERE date_trunc('week', join_date) BETWEEN w - INTERVAL 175 DAY AND w"""
    members = con.execute(f"SELECT count(*) {in_window}").fetchone()[0]
    without_events = con.execute(f"""SELECT count(*) {in_window}
        AND user_id NOT IN (SELECT user_id FROM silver_interactions_enriched)""").fetchone()[0]
    assert sizes == members > without_events > 0
