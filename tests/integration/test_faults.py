"""Faults injected into real processes: whatever fails, nothing is lost, nothing
is duplicated, nothing unvetted is published, and a retry finishes the job.

Each scenario has a catalog of its own (a PostgreSQL database and a warehouse
folder) where a first ingest run (RUN_A, the first date) is published; then a
second run (RUN_B, the next dates) meets a fault: its driver killed with
SIGKILL at a failpoint (spark_jobs/failpoints.py), the catalog's PostgreSQL
stopped, another writer publishing first, a blocked gate, YARN killing a task
over its memory limit. After the fault,
``main`` must show only audited rows; after the retry, every table must equal
the same two runs done cleanly (REFERENCE), with one ops.job_runs row per run
and stage and no duplicate quality result.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from spark_jobs.stage import GATE_BLOCKED_EXIT
from tests.conftest import generate_landing
from tests.databases import fresh_database

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("bronze.interactions", "bronze.user_metadata", "bronze.rejected_rows")
RUN_A, RUN_B = ("faults_a", ["--start-date", "2023-07-01"]), ("faults_b", ["--start-date", "2023-07-02",
                                                                         "--end-date", "2023-07-03"])


class Catalog:
    """One isolated catalog and the stage processes that write it."""

    def __init__(self, name: str, tmp: Path, landing: Path):
        fresh_database(name)
        (tmp / "warehouse").mkdir(parents=True)
        self.landing = landing
        self.env = {**os.environ, "ICEBERG_CATALOG_DB": name, "ICEBERG_WAREHOUSE": str(tmp / "warehouse"),
                    "DATA_DOCS_DIR": str(tmp / "data_docs"), "GX_RESULTS_DIR": str(tmp / "gx"),
                    "SPARK_MASTER": "local[2]", "SPARK_SHUFFLE_PARTITIONS": "2", "SPARK_DRIVER_MEMORY": "1g",
                    "PYTHONPATH": str(ROOT)}
        self.submit: list[str] | None = None

    def command(self, run: tuple[str, list[str]], landing: Path | None = None) -> list[str]:
        landing = landing or self.landing
        run_id, dates = run
        launch = self.submit or [sys.executable, "-m", "spark_jobs.ingest"]
        return [*launch, "--run-id", run_id, *dates,
                "--interactions", str(landing / "user_interactions"), "--metadata", str(landing / "user_metadata")]

    def on_yarn(self, cluster) -> None:
        """Later runs as the DAG's tasks submit them to YARN."""
        from tests.e2e.yarn_service import SPARK_SUBMIT, platform_env

        subprocess.run(["bash", str(ROOT / "infra/package.sh")], cwd=ROOT, check=True, capture_output=True)
        self.env.update({**platform_env(), **cluster.env})
        # Two attempts of a task before Spark gives its job up: the default 4
        # only makes a failing scenario take longer.
        self.submit = [str(SPARK_SUBMIT), "--master", "yarn", "--deploy-mode", "client",
                       "--conf", "spark.task.maxFailures=2",
                       "--py-files", str(ROOT / ".local/dist/pipeline.zip"), "spark_jobs/ingest.py"]

    def ingest(self, run, landing: Path | None = None, failpoint: str | None = None,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        env = {**self.env, **({"PIPELINE_FAILPOINT": failpoint} if failpoint else {}), **(env or {})}
        proc = subprocess.run(self.command(run, landing), cwd=ROOT, env=env, capture_output=True, text=True)
        errors = [line for line in proc.stderr.splitlines() if "Error" in line or "Exception" in line]
        print(proc.stdout[-3000:], *errors[:20], sep="\n")
        return proc

    def start_ingest(self, run, failpoint: str) -> subprocess.Popen:
        """The run in its own process group (the Python driver and its JVM), paused at ``failpoint``."""
        return subprocess.Popen(self.command(run), cwd=ROOT, env={**self.env, "PIPELINE_FAILPOINT": failpoint},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)

    def catalog(self):
        from pyiceberg.catalog import load_catalog

        from iceberg_catalog import config

        settings = {**config.settings(), **{k: self.env[k] for k in ("ICEBERG_CATALOG_DB", "ICEBERG_WAREHOUSE")}}
        return load_catalog(config.CATALOG_NAME, **config.pyiceberg_properties(settings))

    def rows(self, table: str, drop_run_id: bool = False) -> Counter:
        """The table's main as a multiset of rows."""
        rows = self.catalog().load_table(table).scan().to_arrow().to_pylist()
        return Counter(tuple(str(v) for k, v in r.items() if not (drop_run_id and k == "run_id")) for r in rows)

    def state(self, drop_run_id: bool = False) -> dict[str, Counter]:
        return {t: self.rows(t, drop_run_id) for t in TABLES}

    def refs(self, table: str) -> dict[str, int]:
        return {name: ref.snapshot_id for name, ref in self.catalog().load_table(table).metadata.refs.items()}

    def ops(self, table: str) -> list[dict]:
        return self.catalog().load_table(table).scan().to_arrow().to_pylist()


def wait_for(proc: subprocess.Popen, failpoint: str, timeout: float = 600) -> None:
    """Reads the run's stderr until it says it reached ``failpoint``."""
    deadline = time.monotonic() + timeout
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if f"FAILPOINT {failpoint} reached" in line:
            return
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"the run never reached {failpoint}:\n{''.join(seen[-40:])}")


def wait_until(find, timeout: float):
    """The first non-empty value of ``find()``, polled for up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (found := find()):
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing found in {timeout}s")
        time.sleep(0.5)
    return found


def kill9(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


@pytest.fixture(scope="module")
def landing(platform, tmp_path_factory) -> Path:
    return generate_landing(tmp_path_factory.mktemp("faults_landing"), "--mode", "realistic", "--events", "3000",
                            "--users", "100", "--days", "3", "--start-date", "2023-07-01", "--seed", "11",
                            "--malformed-share", "0.02")


@pytest.fixture(scope="module")
def reference_catalog(landing, tmp_path_factory) -> Catalog:
    """RUN_A then RUN_B, no fault: what every scenario must end with."""
    catalog = Catalog("iceberg_faults_reference", tmp_path_factory.mktemp("faults_reference"), landing)
    for run in (RUN_A, RUN_B):
        assert catalog.ingest(run).returncode == 0
    return catalog


@pytest.fixture(scope="module")
def reference(reference_catalog) -> dict:
    return reference_catalog.state()


@pytest.fixture
def published(landing, tmp_path, request) -> Catalog:
    """A catalog of the scenario's own where RUN_A is published."""
    catalog = Catalog(f"iceberg_faults_{request.node.name.removeprefix('test_')[:40]}", tmp_path, landing)
    assert catalog.ingest(RUN_A).returncode == 0
    catalog.after_a = catalog.state()
    return catalog


def assert_recovered(catalog: Catalog, reference: dict) -> None:
    """Every table equals the clean runs; one job row per run, each succeeded; no duplicate result."""
    assert catalog.state() == reference
    jobs = catalog.ops("ops.job_runs")
    assert sorted((j["run_id"], j["job"], j["status"]) for j in jobs) == [
        (RUN_A[0], "ingest", "succeeded"), (RUN_B[0], "ingest", "succeeded")]
    results = Counter((r["run_id"], r["stage"], r["table_name"], r["expectation"]) for r in catalog.ops("ops.quality_results"))
    assert results and max(results.values()) == 1, [k for k, n in results.items() if n > 1]
    for table in TABLES:
        assert set(catalog.refs(table)) == {"main"}, f"{table} keeps a branch"


def assert_main_is_run_a(catalog: Catalog) -> None:
    """Nothing of RUN_B reached main."""
    assert catalog.state() == catalog.after_a


def test_driver_killed_inside_the_write_before_its_commit(published, reference):
    run = published.start_ingest(RUN_B, "in_write:bronze.interactions")
    wait_for(run, "in_write:bronze.interactions")
    # The driver writes its running row beside its first steps: the paused write does not hold it up.
    job_b = wait_until(lambda: [j for j in published.ops("ops.job_runs") if j["run_id"] == RUN_B[0]], timeout=120)
    kill9(run)
    assert_main_is_run_a(published)
    assert job_b == [j for j in published.ops("ops.job_runs") if j["run_id"] == RUN_B[0]]
    assert job_b[0]["status"] == "running"  # what a killed driver leaves; the DAG's callback marks it failed

    assert published.ingest(RUN_B).returncode == 0
    assert_recovered(published, reference)


def test_driver_killed_after_the_commit_before_the_audit(published, reference):
    run = published.start_ingest(RUN_B, "written")
    wait_for(run, "written")
    kill9(run)
    assert_main_is_run_a(published)
    assert "wap_faults_b" in published.refs("bronze.interactions")  # written, never published

    assert published.ingest(RUN_B).returncode == 0
    assert_recovered(published, reference)


def test_process_killed_in_the_middle_of_publishing(published, reference):
    run = published.start_ingest(RUN_B, "published:bronze.interactions")
    wait_for(run, "published:bronze.interactions")
    kill9(run)
    # The first table is published, the others not yet: each table main shows was audited.
    assert published.rows("bronze.interactions") == reference["bronze.interactions"]
    assert published.rows("bronze.user_metadata") == published.after_a["bronze.user_metadata"]
    audited = {r["snapshot_id"] for r in published.ops("ops.quality_results")
               if r["run_id"] == RUN_B[0] and r["table_name"] == "bronze.interactions"}
    assert audited == {published.refs("bronze.interactions")["main"]}

    assert published.ingest(RUN_B).returncode == 0
    assert_recovered(published, reference)


def test_catalog_database_stopped_during_a_stage_then_started_again(published, reference, spark):
    from iceberg_catalog.tables import JOB_RUNS, create_tables

    create_tables(spark, [JOB_RUNS])
    runs_before = spark.table(JOB_RUNS.identifier).count()  # the session now holds pooled catalog connections
    run = published.start_ingest(RUN_B, "written@600")
    wait_for(run, "written")
    subprocess.run(["bash", str(ROOT / "infra/postgres.sh"), "stop"], check=True, capture_output=True)
    run.send_signal(signal.SIGUSR1)  # the run goes on to audit and publish, without its catalog
    try:
        _, stderr = run.communicate(timeout=600)
    finally:
        subprocess.run(["bash", str(ROOT / "infra/postgres.sh"), "start"], check=True, capture_output=True)
    assert run.returncode not in (0, GATE_BLOCKED_EXIT), stderr[-3000:]  # a fault, not a verdict: retried
    assert_main_is_run_a(published)

    assert published.ingest(RUN_B).returncode == 0
    assert_recovered(published, reference)
    # A long-lived session (a notebook, the test session) reconnects instead of
    # failing on the connections the restart ended.
    assert spark.table(JOB_RUNS.identifier).count() == runs_before


@pytest.fixture(scope="module")
def yarn(platform):
    from tests.e2e.yarn_service import running_yarn

    with running_yarn() as cluster:
        yield cluster


def live_yarn_apps(cluster) -> list[dict]:
    from tests.e2e.yarn_service import get_json

    apps = (get_json(f"{cluster.rm_url}/ws/v1/cluster/apps").get("apps") or {}).get("app", [])
    return [a for a in apps if a["state"] in ("NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED", "RUNNING")]


def test_a_task_killed_by_yarn_for_memory_is_a_fault_and_its_retry_publishes(published, reference, yarn):
    published.on_yarn(yarn)
    # The write's tasks each hold 3 GiB in their Python worker: over the
    # executor container's 2.5 GB, so the NodeManager kills the container,
    # every attempt of the task, until Spark gives the job up.
    run = published.ingest(RUN_B, failpoint="in_write:bronze.interactions@120",
                           env={"PIPELINE_FAILPOINT_HOLD_MB": "3072"})
    assert run.returncode not in (0, GATE_BLOCKED_EXIT), run.stderr[-3000:]  # a fault, not a verdict: retried
    assert "physical memory" in run.stderr, run.stderr[-3000:]  # YARN's kill, not another failure
    assert_main_is_run_a(published)
    assert not live_yarn_apps(yarn)

    retry = published.ingest(RUN_B)
    assert retry.returncode == 0, retry.stderr[-3000:]
    assert_recovered(published, reference)
    assert not live_yarn_apps(yarn)


def test_a_run_that_publishes_first_makes_the_other_rebuild_not_lose_dates(published, reference_catalog):
    """Two runs over overlapping dates at once (a scheduled run and a backfill): the
    one paused after its audit finds main moved when it resumes, rebuilds its branch
    from the new main, audits it again and publishes; neither loses the other's dates."""
    overlapping = ("faults_c", ["--start-date", "2023-07-01", "--end-date", "2023-07-02"])
    slow = published.start_ingest(RUN_B, "audited@600")
    wait_for(slow, "audited")
    assert published.ingest(overlapping).returncode == 0  # publishes while RUN_B waits
    slow.send_signal(signal.SIGUSR1)  # RUN_B goes on
    _, stderr = slow.communicate(timeout=600)
    assert slow.returncode == 0, stderr[-3000:]
    # The same rows as the clean runs; the rejected rows of 2023-07-01 name faults_c, which rewrote that date.
    assert published.state(drop_run_id=True) == reference_catalog.state(drop_run_id=True)
    jobs = {(j["run_id"], j["status"]) for j in published.ops("ops.job_runs")}
    assert jobs == {(RUN_A[0], "succeeded"), (RUN_B[0], "succeeded"), (overlapping[0], "succeeded")}
    [job_b] = [j for j in published.ops("ops.job_runs") if j["run_id"] == RUN_B[0]]
    assert json.loads(job_b["metrics_json"])["rebuilds"] == 1


def test_a_blocked_run_fixed_after_a_later_run_published_publishes_its_dates(published, reference_catalog, tmp_path):
    bad = generate_landing(tmp_path / "bad", "--mode", "realistic", "--events", "3000", "--users", "100", "--days", "3",
                           "--start-date", "2023-07-01", "--seed", "11", "--malformed-share", "0.02",
                           "--bad-batch", "out_of_set")
    later = ("faults_c", ["--start-date", "2023-07-03"])
    assert published.ingest(RUN_B, landing=bad).returncode == GATE_BLOCKED_EXIT
    assert_main_is_run_a(published)
    assert published.ingest(later).returncode == 0  # main moves on; the blocked branch is now behind it
    assert published.ingest(RUN_B).returncode == 0  # the fix, re-run: rebuilt from the new main, audited, published
    assert published.state() == reference_catalog.state()  # RUN_B rewrote 2023-07-03 after faults_c, as in the reference
    jobs = {(j["run_id"], j["status"]) for j in published.ops("ops.job_runs")}
    assert jobs == {(RUN_A[0], "succeeded"), (RUN_B[0], "succeeded"), (later[0], "succeeded")}
    for table in TABLES:
        assert set(published.refs(table)) == {"main"}, f"{table} keeps a branch"


def test_compaction_of_main_while_a_branch_is_open(published, reference):
    run = published.start_ingest(RUN_B, "audited@600")
    wait_for(run, "audited")
    compact = subprocess.run([sys.executable, "-c", COMPACT], cwd=ROOT, env=published.env, capture_output=True, text=True)
    assert compact.returncode == 0, compact.stderr[-3000:]
    assert "rewritten" in compact.stdout
    run.send_signal(signal.SIGUSR1)  # the run goes on to publish
    _, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stderr[-3000:]
    assert_recovered(published, reference)
    [job_b] = [j for j in published.ops("ops.job_runs") if j["run_id"] == RUN_B[0]]
    assert json.loads(job_b["metrics_json"])["rebuilds"] == 1


def test_a_speed_layer_append_to_the_rejects_while_a_run_is_open_does_not_make_it_rebuild(published, reference):
    """The speed layer appends its rejects to bronze.rejected_rows every micro-batch:
    an ingest run publishes its audited rows beside them instead of starting over."""
    run = published.start_ingest(RUN_B, "audited@600")
    wait_for(run, "audited")
    append = subprocess.run([sys.executable, "-c", SPEED_LAYER_REJECT], cwd=ROOT, env=published.env,
                            capture_output=True, text=True)
    assert append.returncode == 0, append.stderr[-3000:]
    run.send_signal(signal.SIGUSR1)  # the run goes on to publish
    _, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stderr[-3000:]
    state = published.state()
    live = Counter({r: n for r, n in state["bronze.rejected_rows"].items() if r[0] == "user_interactions_live"})
    assert live == Counter({("user_interactions_live", "None", "kafka:t/0/7", "{", "wrong_column_count",
                             "stream:bronze:0"): 1})
    assert {**state, "bronze.rejected_rows": state["bronze.rejected_rows"] - live} == reference
    [job_b] = [j for j in published.ops("ops.job_runs") if j["run_id"] == RUN_B[0]]
    assert "rebuilds" not in json.loads(job_b["metrics_json"])


# A micro-batch's reject, committed as the speed layer commits it.
SPEED_LAYER_REJECT = """
from spark_jobs.ingest import REJECTED_ROWS
from spark_jobs.spark_session import build_spark_session
from spark_jobs.stream import BatchCommits
spark = build_spark_session("speed layer")
commits = BatchCommits(spark)
commits.query_ids["bronze"] = "a-query-id"
row = [("user_interactions_live", None, "kafka:t/0/7", "{", "wrong_column_count", "stream:bronze:0")]
assert commits.commit(REJECTED_ROWS, spark.createDataFrame(row, REJECTED_ROWS.columns.replace(" NOT NULL", "")),
                      "bronze", 0)
"""


# What the iceberg_maintenance DAG's optimize does to a table, with Spark's procedure.
COMPACT = """
from spark_jobs.spark_session import build_spark_session
spark = build_spark_session("compaction")
r = spark.sql("CALL iceberg.system.rewrite_data_files(table => 'bronze.interactions', "
              "options => map('min-input-files', '1', 'rewrite-all', 'true'))").first()
print("rewritten", r.rewritten_data_files_count)
assert r.rewritten_data_files_count > 0
"""


def test_ingest_counts_every_physical_line(platform, tmp_path):
    """Blank, NUL-only, non-UTF-8, over-long and wrong-column-count lines are rejected
    with their reasons and counted: rows_in = rows_out + rows_rejected = physical lines - header."""
    interactions, metadata = tmp_path / "in" / "user_interactions", tmp_path / "in" / "user_metadata"
    interactions.mkdir(parents=True)
    metadata.mkdir(parents=True)
    good = [f"u{i},2023-07-01 10:00:0{i},page_view,p{i},100{i},1.0.{i}".encode() for i in range(5)]
    lines = [b"user_id,timestamp,action_type,page_id,duration_ms,app_version", good[0], b"", good[1], b"   ",
             b"\x00\x00", good[2], b"u9,2023-07-01 10:00:09,page_view,p\xff\xfe,1,1.0.0", good[3],
             b"u8,2023-07-01 10:00:08,page_view,p" + b"x" * 70_000 + b",1,1.0.0", b"u7,2023-07-01,page_view", good[4]]
    (interactions / "part-0.csv").write_bytes(b"\n".join(lines) + b"\n")
    (metadata / "part-0.csv").write_bytes(b"user_id,join_date,country,device_type,subscription_type\n"
                                          b"u0,2023-01-01,US,iPad,free\n")
    catalog = Catalog("iceberg_faults_lines", tmp_path, tmp_path / "in")
    # Half the lines are bad: a share the gate would block by default, which is not what this test is about.
    proc = catalog.ingest(("faults_lines", ["--max-rejected-share", "1"]))
    assert proc.returncode == 0, proc.stderr[-3000:]
    [job] = catalog.ops("ops.job_runs")
    assert (job["rows_in"], job["rows_out"], job["rows_rejected"]) == (len(lines) - 1, 5, len(lines) - 6)
    reasons = Counter(r["reason"] for r in catalog.ops("bronze.rejected_rows") if r["dataset"] == "user_interactions")
    assert reasons == {"blank_line": 2, "nul_only_line": 1, "invalid_utf8": 1, "line_too_long": 1,
                       "wrong_column_count": 1}
    assert json.loads(job["metrics_json"])["rejected_by_reason"] == {
        f"user_interactions.{reason}": n for reason, n in reasons.items()}
