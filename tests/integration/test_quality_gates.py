"""Write-audit-publish end to end: each stage job (`python -m spark_jobs.<stage>`,
what the DAG's task spark-submits) writes its run's Iceberg branch, audits the
rows it owns there with Great Expectations, and publishes or blocks, in one
process.

Everything runs against catalogs of its own (fresh PostgreSQL databases and
warehouse folders), so other tests and a running demo never see these tables;
assertions read the catalog with PyIceberg, the way a reader outside Spark
would.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pyarrow as pa
import pytest

from spark_jobs.stage import GATE_BLOCKED_EXIT

ROOT = Path(__file__).resolve().parents[2]
GOOD, BAD = "quality_good_1", "quality_bad_1"
EVENTS, USERS, DAYS, START = 4000, 150, 6, "2023-07-01"
INGEST_TABLES = ("bronze.interactions", "bronze.user_metadata", "bronze.rejected_rows")


def branch_of(run_id: str) -> str:
    return f"wap_{run_id}"


def new_catalog(tmp: Path, name: str) -> dict:
    """The environment of every subprocess of one catalog: its database, warehouse and Data Docs folder."""
    sys.path.insert(0, str(ROOT))
    from tests.databases import fresh_database

    fresh_database(name)
    (tmp / "warehouse").mkdir(parents=True)
    return {
        **os.environ,
        "ICEBERG_CATALOG_DB": name,
        "ICEBERG_WAREHOUSE": str(tmp / "warehouse"),
        "DATA_DOCS_DIR": str(tmp / "data_docs"),
        "GX_RESULTS_DIR": str(tmp / "gx"),
        "DATA_DOCS_PORT": "8765",
        "SPARK_MASTER": "local[2]",
        "SPARK_SHUFFLE_PARTITIONS": "4",
        "SPARK_DRIVER_MEMORY": "1g",
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture(scope="module")
def gate_env(platform, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quality_gates")
    env = new_catalog(tmp, "iceberg_quality_gates_test")
    with pytest.MonkeyPatch.context() as mp:  # PyIceberg in this process reads the same catalog
        for key in ("ICEBERG_CATALOG_DB", "ICEBERG_WAREHOUSE"):
            mp.setenv(key, env[key])
        yield {"env": env, "tmp": tmp}


def run(env: dict, module: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    print(proc.stdout[-4000:], proc.stderr[-4000:])
    return proc


def generate(env: dict, out: Path, *args: str) -> Path:
    args = ("--mode", "realistic", "--out", str(out), "--events", str(EVENTS), "--users", str(USERS),
            "--days", str(DAYS), "--start-date", START, "--seed", "7", "--malformed-share", "0.01", *args)
    proc = run(env, "datagen", *args)
    assert proc.returncode == 0, proc.stderr
    return out


def stage(env: dict, name: str, run_id: str, *args: str) -> subprocess.CompletedProcess:
    return run(env, f"spark_jobs.{name}", "--run-id", run_id, *args)


def catalog():
    from iceberg_catalog import config

    return config.load_pyiceberg_catalog()


def refs(table: str) -> dict[str, int]:
    return {name: ref.snapshot_id for name, ref in catalog().load_table(table).metadata.refs.items()}


def rows_of(table: str, run_id: str) -> list[dict]:
    from pyiceberg.expressions import EqualTo

    return catalog().load_table(table).scan(row_filter=EqualTo("run_id", run_id)).to_arrow().to_pylist()


def landing_args(landing: Path) -> list[str]:
    return ["--interactions", str(landing / "user_interactions"), "--metadata", str(landing / "user_metadata")]


@pytest.fixture(scope="module")
def good_landing(gate_env) -> Path:
    return generate(gate_env["env"], gate_env["tmp"] / "landing_good")


@pytest.fixture(scope="module")
def bad_landing(gate_env) -> Path:
    return generate(gate_env["env"], gate_env["tmp"] / "landing_bad", "--bad-batch", "out_of_set")


@pytest.fixture(scope="module")
def published_good_run(gate_env, good_landing):
    """A good batch through ingest, enrich and sessions, each publishing itself."""
    env = gate_env["env"]
    outcome = {"ingest": stage(env, "ingest", GOOD, *landing_args(good_landing))}
    # A threshold no data meets turns the metadata-match warning into a failure: recorded, not blocking.
    outcome["enrich"] = stage(env, "enrich", GOOD, "--min-metadata-match-share", "0.999")
    outcome["sessions"] = stage(env, "sessions", GOOD)
    return outcome


def test_good_batch_passes_and_main_is_the_audited_snapshot(published_good_run):
    for name, proc in published_good_run.items():
        assert proc.returncode == 0, f"stage {name} failed:\n{proc.stderr[-3000:]}"
        assert f"gate {name} run {GOOD} branch {branch_of(GOOD)}: PASSED, published" in proc.stdout
    results = rows_of("ops.quality_results", GOOD)
    ingest_rows = [r for r in results if r["stage"] == "ingest"]
    assert {r["table_name"] for r in ingest_rows} == set(INGEST_TABLES)
    assert all(r["success"] for r in ingest_rows)
    [job] = [r for r in rows_of("ops.job_runs", GOOD) if r["job"] == "ingest"]
    gate = json.loads(job["metrics_json"])["gate"]
    assert job["status"] == "succeeded" and gate["passed"] is True
    for table in INGEST_TABLES:
        table_refs = refs(table)
        assert branch_of(GOOD) not in table_refs, f"{table} still has the published branch"
        # main is now exactly the snapshot the audit validated, and the results name it
        assert table_refs["main"] == gate["audited_snapshots"][table]
        assert {r["snapshot_id"] for r in ingest_rows if r["table_name"] == table} == {table_refs["main"]}
    sessions_sum = [r for r in results if r["expectation_type"] == "expect_column_sum_to_be_between"]
    assert len(sessions_sum) == 1 and sessions_sum[0]["success"]
    enriched = catalog().load_table("silver.interactions_enriched").scan().to_arrow().num_rows
    assert json.loads(sessions_sum[0]["observed_value"]) == enriched


def test_warning_failure_is_recorded_and_does_not_block(published_good_run):
    proc = published_good_run["enrich"]
    assert proc.returncode == 0
    assert "warning       -> silver.interactions_enriched: expect_column_values_to_not_be_null(column='country'" \
        in proc.stdout
    warning_rows = [r for r in rows_of("ops.quality_results", GOOD) if r["stage"] == "enrich" and r["severity"] == "warning"]
    assert len(warning_rows) == 1
    row = warning_rows[0]
    assert row["success"] is False and row["table_name"] == "silver.interactions_enriched"
    assert json.loads(row["expectation"])["kwargs"]["mostly"] == 0.999
    assert json.loads(row["observed_value"])["unexpected_count"] > 0
    assert branch_of(GOOD) not in refs("silver.interactions_enriched")


def table_rows(table: str) -> list[tuple]:
    return sorted(tuple(map(str, r.values())) for r in catalog().load_table(table).scan().to_arrow().to_pylist())


def test_rerunning_a_published_run_changes_no_row(published_good_run, gate_env, good_landing):
    before = {t: table_rows(t) for t in INGEST_TABLES}
    proc = stage(gate_env["env"], "ingest", GOOD, *landing_args(good_landing))
    assert proc.returncode == 0, proc.stderr[-3000:]
    for table in INGEST_TABLES:
        assert branch_of(GOOD) not in refs(table)
        assert table_rows(table) == before[table], table


def test_bad_batch_is_blocked_and_main_keeps_the_previous_data(published_good_run, gate_env, bad_landing):
    env = gate_env["env"]
    good = catalog().load_table("bronze.interactions").scan().to_arrow()
    main_before = {t: refs(t)["main"] for t in INGEST_TABLES}

    proc = stage(env, "ingest", BAD, *landing_args(bad_landing))

    assert proc.returncode == GATE_BLOCKED_EXIT, proc.stderr[-3000:]
    assert f"quality gate of ingest blocked run {BAD}" in proc.stderr
    assert f"gates/{branch_of(BAD)}/ingest.html" in proc.stderr  # the failure message names its Data Docs page
    for table, main in main_before.items():
        table_refs = refs(table)
        assert table_refs["main"] == main, f"{table}: main moved"
        assert branch_of(BAD) in table_refs and table_refs[branch_of(BAD)] != main
    now = catalog().load_table("bronze.interactions").scan().to_arrow()
    assert now.num_rows == good.num_rows
    assert set(now.column("action_type").to_pylist()) <= {"page_view", "edit", "create", "delete", "share"}

    failed = {(r["table_name"], json.loads(r["expectation"])["kwargs"].get("column")): r
              for r in rows_of("ops.quality_results", BAD) if not r["success"]}
    assert set(failed) == {("bronze.interactions", "action_type"), ("bronze.user_metadata", "device_type"),
                           ("bronze.user_metadata", "subscription_type")}
    for row in failed.values():
        assert row["severity"] == "error" and row["expectation_type"] == "expect_column_values_to_be_in_set"
        assert row["snapshot_id"] == refs(row["table_name"])[branch_of(BAD)]
    observed = json.loads(failed[("bronze.interactions", "action_type")]["observed_value"])
    assert observed["unexpected_count"] > 0
    assert set(observed["partial_unexpected_list"]) <= {"scroll", "export", "unknown_action"}
    [job] = rows_of("ops.job_runs", BAD)
    assert job["status"] == "blocked"

    page = (Path(env["DATA_DOCS_DIR"]) / "gates" / branch_of(BAD) / "ingest.html").read_text()
    assert "FAILED" in page
    for row in failed.values():  # the gate page links each table's GX validation page, which exists
        assert (Path(env["DATA_DOCS_DIR"]) / row["data_docs_page"]).is_file()
        assert f'href="../../{quote(row["data_docs_page"])}"' in page


def test_one_application_pipeline_stops_at_the_blocked_gate(published_good_run, bad_landing, gate_env):
    run_id = "quality_bad_one_app"
    main_before = refs("bronze.interactions")["main"]

    proc = run(gate_env["env"], "spark_jobs.pipeline", "--run-id", run_id, "--stages", "ingest,enrich",
               *landing_args(bad_landing))

    assert proc.returncode == GATE_BLOCKED_EXIT, proc.stderr[-3000:]
    assert f"quality gate of ingest blocked run {run_id}" in proc.stderr
    assert "[pipeline] stage ingest" in proc.stdout and "[pipeline] stage enrich" not in proc.stdout
    table_refs = refs("bronze.interactions")
    assert table_refs["main"] == main_before
    assert table_refs[branch_of(run_id)] != main_before
    failed = {(r["table_name"], r["expectation_type"]) for r in rows_of("ops.quality_results", run_id) if not r["success"]}
    assert ("bronze.interactions", "expect_column_values_to_be_in_set") in failed
    assert [r["job"] for r in rows_of("ops.job_runs", run_id)] == ["ingest"]


def test_stage_task_links_to_its_own_data_docs_page():
    sys.path.insert(0, str(ROOT / "dags"))
    import pendulum
    from airflow.models.taskinstancekey import TaskInstanceKey
    from airflow.sdk import DAG
    from pipeline_tasks import DataDocsLink, StageOperator, data_docs_port

    from spark_jobs.pipeline import BY_NAME

    with DAG(dag_id="link_test", start_date=pendulum.datetime(2023, 1, 1, tz="UTC"), schedule=None):
        task = StageOperator(stage=BY_NAME["enrich"])
    run_id = "manual__2023-07-01T00:00:00+00:00"
    link = DataDocsLink().get_link(task, ti_key=TaskInstanceKey("link_test", task.task_id, run_id, 1))
    assert task.task_id == "enrich"
    assert link == f"http://localhost:{data_docs_port()}/gates/wap_manual_2023_07_01t00_00_00_00_00/enrich.html"
    assert [type(x) for x in task.operator_extra_links] == [DataDocsLink]


# --- a bad value where a run rewrites but does not name -----------------------------

SILVER_DAYS, RUN_DATE = 20, dt.date(2023, 7, 14)
BAD_DATE = RUN_DATE + dt.timedelta(days=5)  # inside every gold stage's rewritten dates, outside the named one
BAD_USER, BAD_DURATION_MS = "u_bad_value", -1_000_000


@pytest.fixture(scope="module")
def silver_with_a_bad_day(platform, tmp_path_factory):
    """Silver and gold published over 20 days, then rows with a negative
    duration_ms on BAD_DATE appended to silver's main behind the gates' back (as
    a defect upstream would): every gold table computed from that day is wrong."""
    tmp = tmp_path_factory.mktemp("unnamed_dates")
    env = new_catalog(tmp, "iceberg_unnamed_dates_test")
    landing = generate(env, tmp / "landing", "--days", str(SILVER_DAYS))
    with pytest.MonkeyPatch.context() as mp:
        for key in ("ICEBERG_CATALOG_DB", "ICEBERG_WAREHOUSE"):
            mp.setenv(key, env[key])
        for name in ("ingest", "enrich", *CAUGHT):
            proc = stage(env, name, "setup", *(landing_args(landing) if name == "ingest" else []))
            assert proc.returncode == 0, proc.stderr[-3000:]
        silver = catalog().load_table("silver.interactions_enriched")
        day = silver.scan(row_filter=f"event_date = '{BAD_DATE}' AND action_type = 'page_view'").to_arrow()
        version = Counter(day.column("app_version").to_pylist()).most_common(1)[0][0]  # the day's most used version
        at = dt.datetime.combine(BAD_DATE, dt.time(12, 0))
        bad = {"user_id": BAD_USER, "event_ts": at, "event_date": BAD_DATE, "action_type": "page_view",
               "page_id": "p_bad", "duration_ms": BAD_DURATION_MS, "app_version": version,
               "join_date": None, "country": None, "device_type": None, "subscription_type": None}
        # Enough page loads to pull the version's p95 below zero (an anomaly on BAD_DATE):
        # over 95% of the day's page loads of that version.
        silver.append(pa.Table.from_pylist([bad] * 40 * day.num_rows, schema=silver.schema().as_arrow()))
        yield env


# What each gold stage's gate must catch on BAD_DATE, by table and expectation.
CAUGHT = {
    "engagement": ("gold.daily_engagement", "total_duration_ms"),
    "performance": ("gold.usage_anomalies", "value"),
    "sessions": ("gold.sessions", "session_duration_ms"),
}


@pytest.mark.parametrize("name", sorted(CAUGHT))
def test_a_bad_value_on_a_date_the_run_rewrites_but_does_not_name_is_blocked(silver_with_a_bad_day, name):
    from spark_jobs.pipeline import BY_NAME

    env = silver_with_a_bad_day
    run_id = f"unnamed_{name}"
    with pytest.MonkeyPatch.context() as mp:
        for key in ("ICEBERG_CATALOG_DB", "ICEBERG_WAREHOUSE"):
            mp.setenv(key, env[key])
        tables = BY_NAME[name].tables
        main_before = {t: refs(t)["main"] for t in tables}

        proc = stage(env, name, run_id, "--start-date", str(RUN_DATE), "--end-date", str(RUN_DATE),
                     *(["--anomaly-min-events", "5"] if name == "performance" else []))

        assert proc.returncode == GATE_BLOCKED_EXIT, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert {t: refs(t)["main"] for t in tables} == main_before, "main moved"
        table, column = CAUGHT[name]
        failed = [r for r in rows_of("ops.quality_results", run_id)
                  if not r["success"] and r["table_name"] == table
                  and json.loads(r["expectation"])["kwargs"].get("column") == column]
        assert len(failed) == 1, [r for r in rows_of("ops.quality_results", run_id) if not r["success"]]
        observed = json.loads(failed[0]["observed_value"])
        assert observed["unexpected_count"] >= 1 and all(v < 0 for v in observed["partial_unexpected_list"])
        assert branch_of(run_id) in refs(table)  # kept for inspection
