"""Spark jobs on the project's real single-node YARN.

The fixture starts PostgreSQL, YARN (ResourceManager + NodeManager) and the
Spark History Server when they are not running, and stops what it started.
Each test writes to its own Iceberg catalog database and warehouse, so it
neither sees nor disturbs the developer's tables.
"""
from __future__ import annotations

import subprocess
import textwrap
import uuid
from pathlib import Path

import pytest

from iceberg_catalog import config
from tests.class_archive import APP, assert_loaded_from_the_archive, logging_options
from tests.databases import drop_database, fresh_database
from tests.listening import assert_only_loopback
from tests.e2e.yarn_service import (
    ROOT,
    get_json,
    running_yarn,
    spark_submit,
    wait_for_final_state,
    wait_for_history,
    wait_for_state,
)

RUN_DATES = ("2024-03-01", "2024-03-03")


@pytest.fixture(scope="module")
def yarn(platform):
    with running_yarn() as cluster:
        yield cluster


@pytest.fixture
def isolated_catalog(platform, tmp_path):
    """make(name) -> env overrides pointing the Iceberg catalog at a fresh
    database and warehouse; both are dropped after the test."""
    made: list[str] = []

    def make(name: str) -> dict[str, str]:
        db = f"yarn_e2e_{name}_{uuid.uuid4().hex[:8]}"
        fresh_database(db)
        made.append(db)
        warehouse = tmp_path / f"warehouse_{name}"
        warehouse.mkdir()
        return {"ICEBERG_CATALOG_DB": db, "ICEBERG_WAREHOUSE": str(warehouse)}

    yield make
    for db in made:
        drop_database(db)


def pyiceberg_catalog(overrides: dict[str, str]):
    from pyiceberg.catalog import load_catalog

    props = config.pyiceberg_properties({**config.settings(), **overrides})
    return load_catalog(config.CATALOG_NAME, **props)


def sorted_table(catalog, name: str):
    frame = catalog.load_table(name).scan().to_pandas()
    return frame.sort_values(list(frame.columns), na_position="first").reset_index(drop=True)


@pytest.fixture(scope="module")
def pipeline_zip(platform) -> Path:
    subprocess.run(["bash", str(ROOT / "infra" / "package.sh")], check=True, cwd=ROOT)
    path = ROOT / ".local" / "dist" / "pipeline.zip"
    assert path.stat().st_size > 0
    return path


ICEBERG_APP = textwrap.dedent('''
    """Writes iceberg.yarn_e2e.numbers from four executor tasks."""
    from pyspark.sql import functions as F
    from spark_jobs.spark_session import build_spark_session

    spark = build_spark_session("yarn-e2e iceberg write")
    spark.sql("CREATE NAMESPACE IF NOT EXISTS iceberg.yarn_e2e")
    numbers = spark.range(0, 1000, numPartitions=4).select(
        F.col("id"), (F.col("id") % 7).alias("bucket"))
    numbers.writeTo("iceberg.yarn_e2e.numbers").using("iceberg").createOrReplace()
    spark.stop()
''')


def test_pyspark_app_writes_iceberg_on_yarn(yarn, isolated_catalog, pipeline_zip, tmp_path):
    catalog_env = isolated_catalog("app")
    app = tmp_path / "iceberg_app.py"
    app.write_text(ICEBERG_APP)

    app_id = spark_submit(["--master", "yarn", "--deploy-mode", "client", "--py-files", str(pipeline_zip), str(app)],
                          {**yarn.env, **catalog_env}, tmp_path / "spark-submit.log")

    assert app_id is not None, "spark-submit printed no YARN application id"
    report = wait_for_final_state(yarn, app_id)
    assert (report["state"], report["finalStatus"]) == ("FINISHED", "SUCCEEDED"), report
    assert report["applicationType"] == "SPARK"
    assert report["name"] == "yarn-e2e iceberg write"

    table = pyiceberg_catalog(catalog_env).load_table("yarn_e2e.numbers")
    rows = table.scan().to_arrow()
    assert rows.num_rows == 1000
    assert sum(rows.column("id").to_pylist()) == sum(range(1000))
    assert sorted(set(rows.column("bucket").to_pylist())) == list(range(7))

    history = wait_for_history(yarn, app_id)
    assert history is not None, f"{app_id} not listed by the History Server at {yarn.history_url}"
    assert history["name"] == "yarn-e2e iceberg write"
    # The write ran on YARN containers, not in the driver: executors other than
    # the driver completed the tasks.
    executors = get_json(f"{yarn.history_url}/api/v1/applications/{app_id}/allexecutors")
    container_tasks = sum(e["completedTasks"] for e in executors if e["id"] != "driver")
    assert container_tasks >= 4, executors


SLOW_APP = textwrap.dedent('''
    """Keeps the executor's two cores busy for minutes: something to kill."""
    import sys, time
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName(sys.argv[1]).getOrCreate()
    spark.sparkContext.parallelize(range(2), 2).foreach(lambda _: time.sleep(600))
''')


def wait_for_executors(count: int, timeout: float = 180) -> bool:
    """Whether ``count`` executor JVMs run in YARN containers within ``timeout`` s,
    each for a few seconds already (long enough to have opened its ports)."""
    import time

    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        executors = [p for p in psutil.process_iter(["cmdline", "create_time"])
                     if "org.apache.spark.executor.YarnCoarseGrainedExecutorBackend" in (p.info["cmdline"] or [])]
        if len(executors) >= count and all(time.time() - p.info["create_time"] > 10 for p in executors):
            return True
        time.sleep(2)
    return False


def test_a_running_application_listens_on_loopback_only_and_a_retry_kills_it(yarn, tmp_path):
    """While an application runs, YARN's daemons, the History Server and every
    process of the application (driver, application master, executors) listen
    on loopback only. Then the operator's own kill path for a retried task
    (dags/pipeline_tasks.py): the earlier attempt's application is found by the
    YARN tag the operator gives it, killed through the RM's REST API, and the RM
    records it KILLED."""
    import os
    import subprocess
    import sys

    sys.path.insert(0, str(ROOT / "dags"))
    from pipeline_tasks import kill_yarn_app, live_yarn_apps, yarn_tag
    from tests.e2e.yarn_service import SPARK_SUBMIT, platform_env

    name = f"yarn-e2e kill {uuid.uuid4().hex[:6]}"
    tag = yarn_tag("goodnote_pipeline", "ingest", f"manual__{name}")
    app = tmp_path / "slow_app.py"
    app.write_text(SLOW_APP)
    with open(tmp_path / "spark-submit.log", "w") as log:
        submit = subprocess.Popen([str(SPARK_SUBMIT), "--master", "yarn", "--conf", f"spark.yarn.tags={tag}", str(app),
                                   name], cwd=ROOT, env={**os.environ, **platform_env(), **yarn.env}, stdout=log,
                                  stderr=subprocess.STDOUT)
    try:
        running = wait_for_state(yarn, name, {"RUNNING"})
        assert running is not None, f"{name} never reached RUNNING; see {tmp_path / 'spark-submit.log'}"
        assert wait_for_executors(1), "the application's executor never started"
        settings = config.settings()
        assert_only_loopback({int(settings[k]) for k in (
            "YARN_RM_PORT", "YARN_RM_WEBAPP_PORT", "YARN_NM_WEBAPP_PORT", "SPARK_HISTORY_PORT")})

        assert live_yarn_apps(yarn.rm_url, tag) == [running["id"]]
        assert live_yarn_apps(yarn.rm_url, yarn_tag("goodnote_pipeline", "enrich", f"manual__{name}")) == []
        kill_yarn_app(yarn.rm_url, running["id"])

        report = wait_for_final_state(yarn, running["id"], timeout=60)
        assert (report["state"], report["finalStatus"]) == ("KILLED", "KILLED")
        assert live_yarn_apps(yarn.rm_url, tag) == []
        assert submit.wait(timeout=120) != 0  # the driver sees its application die
    finally:
        if submit.poll() is None:
            submit.kill()


def test_a_driver_submitted_as_the_dags_tasks_do_maps_the_class_archive(yarn, tmp_path, monkeypatch):
    """The DAG's tasks submit to the single-node YARN with its settings as a
    properties file and no SPARK_CONF_DIR (dags/pipeline_tasks.py), so the
    driver's class path begins as the one the class archive was written for:
    the driver maps it."""
    import os

    from tests.e2e.yarn_service import SPARK_SUBMIT, platform_env

    monkeypatch.delenv("SPARK_CONF_DIR", raising=False)
    conf = config.spark_driver_conf(on_yarn=True)
    java_options = conf["spark.driver.extraJavaOptions"]
    assert "-XX:SharedArchiveFile=" in java_options, f"no class archive at {config.SPARK_DRIVER_CLASS_ARCHIVE}"
    app = tmp_path / "app.py"
    app.write_text(APP)
    class_log = tmp_path / "classes.log"
    env = {k: v for k, v in {**os.environ, **platform_env(), **yarn.env}.items() if k != "SPARK_CONF_DIR"}
    settings = [f"{k}={v}" for k, v in {**conf, "spark.driver.extraJavaOptions": logging_options(java_options, class_log)}.items()]
    proc = subprocess.run(
        [str(SPARK_SUBMIT), "--master", "yarn", "--properties-file", yarn.env["PIPELINE_SPARK_PROPERTIES_FILE"],
         *[a for s in settings for a in ("--conf", s)], str(app)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "master yarn rows 1000" in proc.stdout
    assert_loaded_from_the_archive(class_log)


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("landing")
    subprocess.run([str(ROOT / ".venv/bin/python"), "-m", "datagen", "--mode", "challenge", "--out", str(out),
                    "--events", "5000", "--days", "3", "--start-date", RUN_DATES[0], "--seed", "11"],
                   check=True, cwd=ROOT)
    return out


def test_ingest_on_yarn_equals_local_mode(yarn, isolated_catalog, pipeline_zip, landing, tmp_path):
    from spark_jobs.pipeline import BY_NAME

    job_args = ["--py-files", str(pipeline_zip), "spark_jobs/ingest.py", "--run-id", "yarn_e2e",
                "--start-date", RUN_DATES[0], "--end-date", RUN_DATES[1],
                "--interactions", str(landing / "user_interactions"), "--metadata", str(landing / "user_metadata")]
    local_env = isolated_catalog("local")
    yarn_env = isolated_catalog("yarn")

    # The Iceberg and JDBC jars must be on spark-submit's command line (the YARN
    # profile's spark-defaults.conf carries them as spark.jars): set only from
    # the job's SparkSession builder they never reach the driver's classpath.
    local_jars = ["--jars", ",".join(config.spark_jars())]
    assert spark_submit(["--master", "local[2]", *local_jars, *job_args], local_env, tmp_path / "local.log") is None
    # With the driver settings the DAG's tasks add: YARN's executors write through the bare local file system.
    driver_conf = [a for k, v in config.spark_driver_conf(on_yarn=True).items() for a in ("--conf", f"{k}={v}")]
    app_id = spark_submit(["--master", "yarn", "--deploy-mode", "client", *driver_conf, *job_args],
                          {**yarn.env, **yarn_env}, tmp_path / "yarn.log")

    assert app_id is not None, "spark-submit printed no YARN application id"
    report = wait_for_final_state(yarn, app_id)
    assert (report["state"], report["finalStatus"]) == ("FINISHED", "SUCCEEDED"), report

    local_catalog, yarn_catalog = pyiceberg_catalog(local_env), pyiceberg_catalog(yarn_env)
    for name in BY_NAME["ingest"].tables:
        expected, actual = sorted_table(local_catalog, name), sorted_table(yarn_catalog, name)
        assert len(actual) > 0 or name == "bronze.rejected_rows", f"{name} is empty on YARN"
        assert list(actual.columns) == list(expected.columns), name
        assert actual.equals(expected), f"{name}: YARN result differs from local mode"
    interactions = sorted_table(yarn_catalog, "bronze.interactions")
    assert {str(d) for d in interactions["event_date"].unique()} <= {"2024-03-01", "2024-03-02", "2024-03-03"}
