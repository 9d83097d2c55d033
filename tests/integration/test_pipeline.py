"""All five jobs on generated data, read back through PyIceberg."""
from __future__ import annotations

import json

from iceberg_catalog import config
from spark_jobs.pipeline import STAGES, TABLES
from tests.assertions import assert_rows
from tests.conftest import GOODNOTE_DATASETS

PUBLISHED = [t for stage in STAGES for t in stage.tables]


def _spark_rows(spark, table):
    return spark.table(TABLES[table].identifier)


def test_pyiceberg_reads_what_spark_wrote(spark, pipeline_run):
    catalog = config.load_pyiceberg_catalog()
    for table in PUBLISHED:
        df = _spark_rows(spark, table)
        arrow = catalog.load_table(table).scan().to_arrow()
        assert arrow.column_names == df.columns, table
        assert_rows(df, df.columns, [tuple(r.values()) for r in arrow.to_pylist()])


def test_every_table_has_rows(spark, pipeline_run):
    # Four days cannot give the 7-point baseline an anomaly needs (unit-tested instead).
    for table in set(PUBLISHED) - {"gold.usage_anomalies"}:
        assert spark.table(TABLES[table].identifier).count() > 0, table


def _landing_rows(landing):
    rows = 0
    for path in sorted((landing / "user_interactions").rglob("*.csv")):
        with open(path, newline="") as f:
            rows += sum(1 for line in f if line.strip()) - 1  # header
    return rows


def test_accepted_plus_rejected_equals_rows_read(spark, pipeline_run):
    landing = pipeline_run["landing"]
    accepted = spark.table("iceberg.bronze.interactions").count()
    rejected = spark.table("iceberg.bronze.rejected_rows").where("dataset = 'user_interactions'").count()
    assert accepted + rejected == _landing_rows(landing)
    manifest = json.loads((landing / "_manifest.json").read_text())
    assert rejected > 0
    goodnote_rejects = spark.table("iceberg.bronze.rejected_rows").where(
        f"dataset IN {GOODNOTE_DATASETS}")
    reasons = {r.reason for r in goodnote_rejects.select("reason").distinct().collect()}
    assert {"wrong_column_count", "empty_user_id", "bad_timestamp", "bad_duration_ms", "bad_app_version"} <= reasons, manifest
    run = pipeline_run["job_runs"]["ingest"]
    assert (run.status, run.rows_out, run.rows_rejected, run.rows_in) == ("succeeded", accepted, rejected, accepted + rejected)
    by_reason = goodnote_rejects.groupBy("dataset", "reason").count().collect()
    assert json.loads(run.metrics_json)["rejected_by_reason"] == {f"{r.dataset}.{r.reason}": r["count"] for r in by_reason}


def test_enriched_has_every_interaction_once(spark, pipeline_run):
    bronze = spark.table("iceberg.bronze.interactions").drop("source_file")
    enriched = spark.table("iceberg.silver.interactions_enriched").select(*bronze.columns)
    assert enriched.count() == bronze.count()
    assert enriched.exceptAll(bronze).count() == 0 and bronze.exceptAll(enriched).count() == 0


def test_broadcast_enrich_writes_one_silver_file_per_date(spark, pipeline_run):
    # The broadcast join skips Iceberg's shuffle by partition: each scan task of
    # bronze holds whole one-date files, so silver must still get one file per date.
    metrics = json.loads(pipeline_run["job_runs"]["enrich"].metrics_json)
    assert metrics["join_strategy"] == "broadcast"
    assert metrics["join_stage"]["available"] and metrics["join_stage"]["shuffle_write_bytes"] == 0, metrics["join_stage"]
    files = spark.sql("SELECT partition.event_date AS d, count(*) AS n FROM iceberg.silver.interactions_enriched.files "
                      "GROUP BY 1").collect()
    dates = spark.table("iceberg.bronze.interactions").select("event_date").distinct().count()
    assert len(files) == dates and {r.n for r in files} == {1}, sorted((r.d, r.n) for r in files)


def test_job_runs_record_the_hot_users(spark, pipeline_run):
    metrics = json.loads(pipeline_run["job_runs"]["enrich"].metrics_json)
    manifest = json.loads((pipeline_run["landing"] / "_manifest.json").read_text())
    found = {k["user_id"] for k in metrics["hot_keys"]}
    # Every hot user the generator planted is found (Zipf's head may add a few more above the 1% share).
    assert set(manifest["realistic"]["hot_users"]) <= found, (found, manifest["realistic"]["hot_users"])


def test_sessions_cover_every_enriched_event(spark, pipeline_run):
    events = spark.table("iceberg.silver.interactions_enriched").count()
    actions = spark.table("iceberg.gold.sessions").agg({"actions": "sum"}).collect()[0][0]
    assert actions == events
