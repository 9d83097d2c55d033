"""Session-wide fixtures: the project's PostgreSQL and one SparkSession."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Tests get their own catalog database and warehouse, so `make test` never
# touches the tables `make demo` published. Every process the tests start
# (spark-submit, Trino, Airflow) inherits these.
os.environ.setdefault("ICEBERG_CATALOG_DB", "iceberg_test")
os.environ.setdefault("ICEBERG_WAREHOUSE", str(ROOT / ".local" / "test-warehouse"))


@pytest.fixture(scope="session")
def platform():
    """Starts the project's PostgreSQL (idempotent) so the Iceberg catalog is there."""
    subprocess.run(["bash", str(ROOT / "infra/postgres.sh"), "start"], check=True)
    yield


@pytest.fixture(scope="session")
def spark(platform):
    os.environ.setdefault("SPARK_MASTER", "local[2]")
    os.environ.setdefault("SPARK_SHUFFLE_PARTITIONS", "4")
    from iceberg_catalog import config
    from spark_jobs.spark_session import build_spark_session

    # With Spark's Kafka source, so the speed layer's tests can run it in this session.
    session = build_spark_session("pytest", {"spark.jars": ",".join(config.spark_jars() + config.spark_kafka_jars())})
    yield session
    session.stop()


def run_pipeline(run_id: str, landing: Path, *date_args: str) -> None:
    """Every stage in order, through the one-application entry point spark_jobs/pipeline.py."""
    from spark_jobs import pipeline

    status = pipeline.main(["--run-id", run_id, *date_args, "--interactions", str(landing / "user_interactions"),
                            "--metadata", str(landing / "user_metadata")])
    if status != 0:
        raise RuntimeError(f"pipeline run {run_id} exited with {status}")


def drop_pipeline_tables(spark) -> None:
    """Every table of both pipelines and the ops tables gone: a test session starts on an empty catalog."""
    from spark_jobs.pipeline import TABLES

    for spec in TABLES.values():
        spark.sql(f"DROP TABLE IF EXISTS {spec.identifier} PURGE")


GOODNOTE_DATASETS = ("user_interactions", "user_metadata")


def drop_goodnote_tables(spark) -> None:
    """The GoodNote pipeline's tables gone and its rows of the rejects table it shares
    with the LastFM pipeline deleted; the LastFM tables stay as ``lastfm_run`` left them."""
    from spark_jobs.ingest import REJECTED_ROWS
    from spark_jobs.pipeline import STAGES, TABLES

    for table in {t for stage in STAGES for t in stage.tables} - {REJECTED_ROWS.name}:
        spark.sql(f"DROP TABLE IF EXISTS {TABLES[table].identifier} PURGE")
    spark.sql(f"DELETE FROM {REJECTED_ROWS.identifier} WHERE dataset IN {GOODNOTE_DATASETS}")


def generate_landing(out: Path, *args: str) -> Path:
    import sys

    subprocess.run([sys.executable, "-m", "datagen", "--out", str(out), *args], check=True, cwd=ROOT)
    return out


@pytest.fixture(scope="session")
def landing(tmp_path_factory) -> Path:
    """Small realistic landing data: 4 days, hot users, sessions, malformed rows."""
    return generate_landing(tmp_path_factory.mktemp("landing"), "--mode", "realistic", "--events", "20000",
                            "--users", "300", "--days", "4", "--start-date", "2023-07-01", "--seed", "7",
                            "--malformed-share", "0.02")


@pytest.fixture(scope="session")
def pipeline_run(spark, landing):
    """All five jobs run once over every date of ``landing`` into the test catalog.
    Its ops.job_runs rows are kept here: later tests may rebuild the tables."""
    drop_pipeline_tables(spark)
    run_pipeline("test-full", landing)
    job_runs = {r.job: r for r in spark.table("iceberg.ops.job_runs").where("run_id = 'test-full'").collect()}
    return {"run_id": "test-full", "landing": landing, "job_runs": job_runs}


@pytest.fixture(scope="session")
def lastfm_run(spark, pipeline_run, tmp_path_factory) -> dict:
    """The lastfm_sessions pipeline once, beside the GoodNote tables of ``pipeline_run``,
    on a small generated dump (three months of plays: as many day partitions)."""
    import sys

    from spark_jobs import pipeline

    plays = tmp_path_factory.mktemp("lastfm") / "userid-timestamp-artid-artname-traid-traname.tsv"
    subprocess.run([sys.executable, "-m", "datagen.lastfm", "--out", str(plays), "--plays", "20000", "--users", "30",
                    "--start-date", "2009-01-01", "--end-date", "2009-03-31", "--seed", "5"],
                   check=True, cwd=ROOT, capture_output=True)
    if pipeline.main(["--pipeline", "lastfm_sessions", "--run-id", "test-lastfm", "--plays", str(plays)]) != 0:
        raise RuntimeError("lastfm_sessions run test-lastfm failed")
    return {"run_id": "test-lastfm", "plays": plays}
