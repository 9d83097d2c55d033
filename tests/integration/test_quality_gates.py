"""Quality gates end to end: the real stage jobs write a run's Iceberg branch,
the real gate (`python -m spark_jobs.quality_gate`, what the DAG's gate task
spark-submits) validates it with Great Expectations and publishes or blocks.

Everything runs against a catalog of its own (a fresh PostgreSQL database and
warehouse folder), so other tests and a running demo never see these tables;
assertions read the catalog with PyIceberg, the way a reader outside Spark
would. The tests of this module run in order and build on each other: a good
run published, the same run re-gated, then a bad batch blocked.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEST_CATALOG_DB = "iceberg_quality_gates_test"
GOOD, BAD = "quality_good_1", "quality_bad_1"
EVENTS, USERS, DAYS, START = 4000, 150, 6, "2023-07-01"


def branch_of(run_id: str) -> str:
    return f"wap_{run_id}"


@pytest.fixture(scope="module")
def gate_env(platform, tmp_path_factory):
    """Environment of every subprocess: the test catalog, its warehouse, Data Docs folder."""
    tmp = tmp_path_factory.mktemp("quality_gates")
    sys.path.insert(0, str(ROOT))
    from iceberg_catalog import config

    settings = config.settings()
    import psycopg2

    conn = psycopg2.connect(host=settings["PG_HOST"], port=settings["PG_PORT"], user=settings["PG_USER"],
                            password=settings["PG_PASSWORD"], dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {TEST_CATALOG_DB} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {TEST_CATALOG_DB}")
    conn.close()
    env = {
        **os.environ,
        "ICEBERG_CATALOG_DB": TEST_CATALOG_DB,
        "ICEBERG_WAREHOUSE": str(tmp / "warehouse"),
        "DATA_DOCS_DIR": str(tmp / "data_docs"),
        "GX_RESULTS_DIR": str(tmp / "gx"),
        "DATA_DOCS_PORT": "8765",
        "SPARK_MASTER": "local[2]",
        "SPARK_SHUFFLE_PARTITIONS": "4",
        "SPARK_DRIVER_MEMORY": "1g",
        "PYTHONPATH": str(ROOT),
    }
    (tmp / "warehouse").mkdir()
    # PyIceberg in this process reads the same test catalog.
    with pytest.MonkeyPatch.context() as mp:
        for key in ("ICEBERG_CATALOG_DB", "ICEBERG_WAREHOUSE"):
            mp.setenv(key, env[key])
        yield {"env": env, "tmp": tmp}


def run(env: dict, module: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    print(proc.stdout[-4000:], proc.stderr[-4000:])
    return proc


def generate(env: dict, out: Path, bad_batch: str | None = None) -> Path:
    args = ["--mode", "realistic", "--out", str(out), "--events", str(EVENTS), "--users", str(USERS),
            "--days", str(DAYS), "--start-date", START, "--seed", "7", "--malformed-share", "0.01"]
    proc = run(env, "infra.datagen", *args, *(["--bad-batch", bad_batch] if bad_batch else []))
    assert proc.returncode == 0, proc.stderr
    return out


def stage(env: dict, name: str, run_id: str, *args: str) -> None:
    proc = run(env, f"spark_jobs.{name}", "--run-id", run_id, "--branch", branch_of(run_id), *args)
    assert proc.returncode == 0, f"stage {name} failed:\n{proc.stderr[-3000:]}"


def gate(env: dict, name: str, run_id: str, *args: str) -> tuple[int, dict, str]:
    proc = run(env, "spark_jobs.quality_gate", "--stage", name, "--run-id", run_id, "--branch", branch_of(run_id), *args)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("GATE_RESULT ")]
    result = json.loads(lines[-1].removeprefix("GATE_RESULT ")) if lines else {}
    return proc.returncode, result, proc.stdout + proc.stderr


def catalog():
    from iceberg_catalog import config

    return config.load_pyiceberg_catalog()


def refs(table: str) -> dict[str, int]:
    return {name: ref.snapshot_id for name, ref in catalog().load_table(table).metadata.refs.items()}


def quality_rows(run_id: str) -> list[dict]:
    from pyiceberg.expressions import EqualTo

    table = catalog().load_table("ops.quality_results")
    return table.scan(row_filter=EqualTo("run_id", run_id)).to_arrow().to_pylist()


def landing_args(landing: Path) -> list[str]:
    return ["--interactions", str(landing / "user_interactions"), "--metadata", str(landing / "user_metadata")]


@pytest.fixture(scope="module")
def published_good_run(gate_env):
    """A good batch through ingest, enrich and sessions, each published by its gate."""
    env = gate_env["env"]
    landing = generate(env, gate_env["tmp"] / "landing_good")
    outcome = {}
    stage(env, "ingest", GOOD, *landing_args(landing))
    branch_heads = {t: refs(t)[branch_of(GOOD)] for t in ("bronze.interactions", "bronze.rejected_rows")}
    outcome["ingest"] = (*gate(env, "ingest", GOOD), branch_heads)
    stage(env, "enrich", GOOD)
    # A threshold no data meets turns the metadata-match warning into a failure: recorded, not blocking.
    outcome["enrich"] = (*gate(env, "enrich", GOOD, "--min-metadata-match-share", "0.999"), None)
    stage(env, "sessions", GOOD)
    outcome["sessions"] = (*gate(env, "sessions", GOOD), None)
    return outcome


def test_good_batch_passes_and_main_moves_to_the_branch_snapshot(published_good_run):
    for name, (returncode, result, output, _) in published_good_run.items():
        assert returncode == 0, f"gate {name} failed:\n{output[-3000:]}"
        assert result["passed"] is True and result["blocking_failures"] == []
    _, result, _, branch_heads = published_good_run["ingest"]
    for table, head in branch_heads.items():
        table_refs = refs(table)
        assert table_refs["main"] == head, f"{table}: main is {table_refs['main']}, the audited branch head was {head}"
        assert branch_of(GOOD) not in table_refs, f"{table} still has the published branch"
    rows = quality_rows(GOOD)
    ingest_rows = [r for r in rows if r["stage"] == "ingest"]
    assert {r["table_name"] for r in ingest_rows} == {"bronze.interactions", "bronze.user_metadata", "bronze.rejected_rows"}
    assert all(r["success"] for r in ingest_rows)
    assert {r["snapshot_id"] for r in ingest_rows if r["table_name"] == "bronze.interactions"} == \
        {branch_heads["bronze.interactions"]}
    sessions_sum = [r for r in rows if r["expectation_type"] == "expect_column_sum_to_be_between"]
    assert len(sessions_sum) == 1 and sessions_sum[0]["success"]
    enriched = catalog().load_table("silver.interactions_enriched").scan().to_arrow().num_rows
    assert json.loads(sessions_sum[0]["observed_value"]) == enriched


def test_warning_failure_is_recorded_and_does_not_block(published_good_run):
    returncode, result, _, _ = published_good_run["enrich"]
    assert returncode == 0 and result["passed"] is True
    assert len(result["warnings"]) == 1
    assert result["warnings"][0].startswith("silver.interactions_enriched: expect_column_values_to_not_be_null(column='country'")
    warning_rows = [r for r in quality_rows(GOOD) if r["stage"] == "enrich" and r["severity"] == "warning"]
    assert len(warning_rows) == 1
    row = warning_rows[0]
    assert row["success"] is False and row["table_name"] == "silver.interactions_enriched"
    assert json.loads(row["expectation"])["kwargs"]["mostly"] == 0.999
    assert json.loads(row["observed_value"])["unexpected_count"] > 0
    assert branch_of(GOOD) not in refs("silver.interactions_enriched")


def test_rerunning_a_published_run_publishes_nothing_new(published_good_run, gate_env):
    before = {t: refs(t) for t in ("bronze.interactions", "bronze.user_metadata", "bronze.rejected_rows")}
    results_before = len(quality_rows(GOOD))
    returncode, result, output = gate(gate_env["env"], "ingest", GOOD)
    assert returncode == 0, output[-3000:]
    assert result["already_published"] is True and result["published"] == {}
    assert {t: refs(t) for t in before} == before
    assert len(quality_rows(GOOD)) == results_before


def test_bad_batch_is_blocked_and_main_keeps_the_previous_data(published_good_run, gate_env):
    env = gate_env["env"]
    good = catalog().load_table("bronze.interactions").scan().to_arrow()
    main_before = refs("bronze.interactions")["main"]
    landing = generate(env, gate_env["tmp"] / "landing_bad", bad_batch="out_of_set")
    stage(env, "ingest", BAD, *landing_args(landing))

    returncode, result, output = gate(env, "ingest", BAD)

    assert returncode == 1, output[-3000:]
    assert result["passed"] is False and result["published"] == {}
    assert f"gates/{branch_of(BAD)}/ingest.html" in output  # the failure message names its Data Docs page
    table_refs = refs("bronze.interactions")
    assert table_refs["main"] == main_before
    assert branch_of(BAD) in table_refs and table_refs[branch_of(BAD)] != main_before
    now = catalog().load_table("bronze.interactions").scan().to_arrow()
    assert now.num_rows == good.num_rows
    assert set(now.column("action_type").to_pylist()) == set(good.column("action_type").to_pylist())
    assert set(now.column("action_type").to_pylist()) <= {"page_view", "edit", "create", "delete", "share"}

    failed = {(r["table_name"], json.loads(r["expectation"])["kwargs"].get("column")): r
              for r in quality_rows(BAD) if not r["success"]}
    assert set(failed) == {("bronze.interactions", "action_type"), ("bronze.user_metadata", "device_type"),
                           ("bronze.user_metadata", "subscription_type")}
    for row in failed.values():
        assert row["severity"] == "error" and row["expectation_type"] == "expect_column_values_to_be_in_set"
        assert row["snapshot_id"] == refs(row["table_name"])[branch_of(BAD)]
    observed = json.loads(failed[("bronze.interactions", "action_type")]["observed_value"])
    assert observed["unexpected_count"] > 0
    assert set(observed["partial_unexpected_list"]) <= {"scroll", "export", "unknown_action"}

    page = (Path(env["DATA_DOCS_DIR"]) / "gates" / branch_of(BAD) / "ingest.html").read_text()
    assert "FAILED" in page
    for row in failed.values():  # the gate page links each table's GX validation page, which exists
        assert (Path(env["DATA_DOCS_DIR"]) / row["data_docs_page"]).is_file()
        assert f'href="../../{quote(row["data_docs_page"])}"' in page


def test_one_application_pipeline_stops_at_the_failed_gate(bad_landing, gate_env):
    """spark_jobs/pipeline.py with --branch gates each stage in its own session, as the DAG does."""
    run_id = "quality_bad_one_app"
    main_before = refs("bronze.interactions")["main"]

    proc = run(gate_env["env"], "spark_jobs.pipeline", "--run-id", run_id, "--branch", branch_of(run_id),
               "--stages", "ingest,enrich", *landing_args(bad_landing))

    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f"gate ingest failed for run {run_id}" in proc.stderr
    assert "[pipeline] stage ingest" in proc.stdout and "[pipeline] stage enrich" not in proc.stdout
    table_refs = refs("bronze.interactions")
    assert table_refs["main"] == main_before
    assert table_refs[branch_of(run_id)] != main_before
    failed = {(r["table_name"], r["expectation_type"]) for r in quality_rows(run_id) if not r["success"]}
    assert ("bronze.interactions", "expect_column_values_to_be_in_set") in failed
    from pyiceberg.expressions import EqualTo

    jobs = catalog().load_table("ops.job_runs").scan(row_filter=EqualTo("run_id", run_id)).to_arrow()
    assert jobs.column("job").to_pylist() == ["ingest"]


@pytest.fixture
def bad_landing(gate_env) -> Path:
    landing = gate_env["tmp"] / "landing_bad"
    return landing if landing.exists() else generate(gate_env["env"], landing, bad_batch="out_of_set")


def test_gate_task_links_to_its_own_data_docs_page():
    sys.path.insert(0, str(ROOT / "dags"))
    import pendulum
    from airflow.models.taskinstancekey import TaskInstanceKey
    from airflow.sdk import DAG
    from quality_gate_operator import DataDocsLink, QualityGateOperator

    with DAG(dag_id="link_test", start_date=pendulum.datetime(2023, 1, 1, tz="UTC"), schedule=None):
        task = QualityGateOperator(stage="enrich")
    run_id = "manual__2023-07-01T00:00:00+00:00"
    link = DataDocsLink().get_link(task, ti_key=TaskInstanceKey("link_test", task.task_id, run_id, 1))
    port = os.environ.get("DATA_DOCS_PORT")
    from quality_gate_operator import data_docs_port

    assert task.task_id == "gate_enrich"
    assert link == f"http://localhost:{port or data_docs_port()}/gates/wap_manual_2023_07_01t00_00_00_00_00/enrich.html"
    assert [type(x) for x in task.operator_extra_links] == [DataDocsLink]
