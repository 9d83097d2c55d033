"""goodnote_pipeline end to end in local mode, through Airflow itself.

- one full run with `airflow dags test`: every task succeeds, every table is
  published with the row counts the landing files imply;
- an Airflow backfill of the first date and a run triggered for the second,
  run by a real scheduler started with infra/airflow.sh, publish the same
  tables as the full run;
- a bad batch stops at its stage's gate: main unchanged, the branch kept, the
  failed expectations in ops.quality_results and the task log, no retry, no
  downstream task run, no asset event; a published stage emits one per table;
- the LastFM DAG publishes what DuckDB computes, also when its scheduler is
  killed mid-run and restarted.

Each scenario has its own Airflow metadata DB and Iceberg catalog DB, so the
developer's platform and other tests are untouched; the backfill shares its
running Airflow with test_airflow_roles.py (``running_airflow``, conftest.py).
Slow: about 10 Spark submits per DAG run on a 2-core machine.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from airflow_service import DATES, ROOT, generate_landing, new_env, running_env  # noqa: E402

from spark_jobs.pipeline import BY_NAME, STAGES  # noqa: E402

TASKS = {stage.name for stage in STAGES}
GOLD = [t for stage in ("engagement", "performance", "sessions") for t in BY_NAME[stage].tables]


@pytest.fixture(scope="module")
def workdir(airflow_workdir) -> Path:
    return airflow_workdir


@pytest.fixture(scope="module")
def landing(airflow_landing) -> Path:
    return airflow_landing


@pytest.fixture(scope="module")
def full_run(workdir, landing):
    env = new_env(workdir, landing, "full", 0)
    proc = env.dags_test(DATES[0], {"full_refresh": True})
    yield env, proc
    env.destroy()


@pytest.fixture(scope="module")
def backfill_env(running_airflow):
    return running_airflow


def expected_counts(landing: Path) -> dict[str, int]:
    """Row counts the landing CSVs imply, computed independently with DuckDB."""
    con = duckdb.connect()
    con.execute(f"""CREATE VIEW ev AS SELECT *, CAST(timestamp AS TIMESTAMP) AS ts, CAST(timestamp AS DATE) AS d
                    FROM read_csv_auto('{landing}/user_interactions/*.csv', all_varchar=true)""")
    con.execute(f"CREATE VIEW md AS SELECT * FROM read_csv_auto('{landing}/user_metadata/*.csv', all_varchar=true)")
    one = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    return {
        "bronze.interactions": one("SELECT count(*) FROM ev"),
        "bronze.user_metadata": one("SELECT count(*) FROM md"),
        "silver.interactions_enriched": one("SELECT count(*) FROM ev"),
        "silver.user_dim": one("SELECT count(DISTINCT user_id) FROM md"),
        "gold.daily_engagement": one("SELECT count(DISTINCT d) FROM ev"),
        "gold.monthly_active_users": one("SELECT count(DISTINCT date_trunc('month', d)) FROM ev"),
        "gold.app_version_latency": one(
            "SELECT count(*) FROM (SELECT DISTINCT d, app_version FROM ev WHERE action_type = 'page_view')"),
        "gold.app_version_latency_overall": one(
            "SELECT count(DISTINCT app_version) FROM ev WHERE action_type = 'page_view'"),
        "gold.device_latency_association": 1,
        "gold.sessions": one("""
            SELECT count(*) FROM (
              SELECT ts - lag(ts) OVER (PARTITION BY user_id ORDER BY ts, action_type, page_id,
                                        CAST(duration_ms AS BIGINT)) AS gap FROM ev)
            WHERE gap IS NULL OR gap > INTERVAL 1800 SECOND"""),
    }


def the_full_run(env) -> dict:
    """The full run's record: other tests add runs of other dates to its environment."""
    [run] = [r for r in env.runs() if r["logical_date"].startswith(DATES[0])]
    return run


def test_full_run_every_task_succeeds(full_run):
    env, proc = full_run
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    run = the_full_run(env)
    assert run["state"] == "success"
    assert env.task_states(run["run_id"]) == dict.fromkeys(TASKS, "success")


def test_full_run_logs_a_copy_pastable_spark_submit_line(full_run):
    env, proc = full_run
    lines = [l for l in (proc.stdout + proc.stderr).splitlines() if "Spark-Submit cmd: spark-submit" in l]
    ingest = next(l for l in lines if "spark_jobs/ingest.py" in l)
    assert f"--py-files {ROOT}/.local/dist/pipeline.zip" in ingest
    assert "--master 'local[*]'" in ingest
    assert "--driver-memory 4g" in ingest
    assert "--name goodnote_pipeline.ingest.manual__" in ingest
    assert "--run-id manual__" in ingest and "--max-rejected-share 0.05" in ingest  # the form's values
    assert (f"--conf 'spark.driver.extraJavaOptions=-XX:+UseParallelGC -XX:MaxInlineLevel=6 -XX:FreqInlineSize=100 "
            f"-XX:InlineSmallCode=1000 -XX:SharedArchiveFile={ROOT}/.local/jvm/spark-driver.jsa'") in ingest
    assert len(lines) == len(TASKS)
    # The stages of many small tables run their driver with the client compiler only.
    client_compiler = {stage for stage in TASKS if "-XX:TieredStopAtLevel=1" in
                       next(l for l in lines if f"spark_jobs/{stage}.py" in l)}
    assert client_compiler == {"engagement", "performance"}


def test_a_published_stage_emits_one_asset_event_per_table(full_run):
    env, _ = full_run
    run = the_full_run(env)
    assert sorted(env.asset_events(run["run_id"])) == sorted(
        (f"iceberg.{table}", stage.name) for stage in STAGES for table in stage.tables)


def test_full_run_publishes_expected_row_counts(full_run, landing):
    env, _ = full_run
    for table, rows in expected_counts(landing).items():
        assert env.row_count(table) == rows, table
    for table in GOLD:  # published: its gate moved main to a snapshot (some may hold no rows)
        assert env.snapshot_count(table) >= 1, table


def test_bad_batch_stops_at_its_gate_and_nothing_downstream_runs(full_run, workdir):
    env, _ = full_run
    bad_landing = workdir / "landing_bad"
    generate_landing(bad_landing, days=len(DATES) + 1, start_date=DATES[0], bad_batch="out_of_set")
    bronze = ["bronze.interactions", "bronze.user_metadata"]
    before = {t: (env.refs(t), env.table_rows(t)) for t in bronze}

    # Another logical date than the full run's, same tables: a full refresh from the bad files.
    proc = dataclasses.replace(env, landing=bad_landing).dags_test(DATES[1], {"full_refresh": True})

    assert proc.returncode != 0
    [run] = [r for r in env.runs() if r["logical_date"].startswith(DATES[1])]
    states = env.task_states(run["run_id"])
    assert states["ingest"] == "failed"
    assert {t: states[t] for t in TASKS - {"ingest"}} == dict.fromkeys(TASKS - {"ingest"}, "upstream_failed")
    output = proc.stdout + proc.stderr
    assert f"quality gate of ingest blocked run {run['run_id']}" in output  # told apart from a fault: no retry
    assert "error failed  -> bronze.interactions: expect_column_values_to_be_in_set(column='action_type'" in output
    for table, (refs_before, rows_before) in before.items():
        refs_now = env.refs(table)
        assert refs_now["main"] == refs_before["main"], f"{table}: main moved"
        assert env.table_rows(table) == rows_before, table
        [branch] = set(refs_now) - set(refs_before)  # the run's audit branch, kept for inspection
        assert branch.startswith("wap_") and refs_now[branch] != refs_now["main"]
    assert env.asset_events(run["run_id"]) == []  # nothing was published
    failed = [r for r in env.quality_results(run["run_id"]) if not r["success"]]
    assert {(r["table_name"], r["severity"], r["expectation_type"]) for r in failed} >= {
        ("bronze.interactions", "error", "expect_column_values_to_be_in_set")}
    observed = next(json.loads(r["observed_value"]) for r in failed if r["table_name"] == "bronze.interactions")
    assert observed["unexpected_count"] > 0


def test_a_backfill_and_a_triggered_run_together_equal_the_full_run(full_run, backfill_env):
    # The two ways users start runs: an Airflow backfill (one run per date; here the
    # first date) and a run triggered with its dates as params (the second date).
    # Re-running a date through its gates is tests/integration/test_reruns.py.
    full, _ = full_run
    backfill = backfill_env.trigger_script("--backfill", "--start-date", DATES[0], "--end-date", DATES[0],
                                           "--timeout", "3600")
    assert backfill.returncode == 0, backfill.stdout[-5000:] + backfill.stderr[-3000:]
    triggered = backfill_env.trigger_script("--start-date", DATES[1], "--end-date", DATES[1], "--timeout", "3600")
    assert triggered.returncode == 0, triggered.stdout[-5000:] + triggered.stderr[-3000:]
    runs = backfill_env.runs()
    assert [r["logical_date"][:10] for r in runs if r["run_id"].startswith("backfill__")] == [DATES[0]]
    assert len(runs) == 2
    for run in runs:
        assert run["state"] == "success"
        assert backfill_env.task_states(run["run_id"]) == dict.fromkeys(TASKS, "success")
    for table in ["bronze.interactions", "silver.interactions_enriched", *GOLD]:
        assert backfill_env.table_rows(table) == full.table_rows(table), table


LASTFM_CONF = {"top_sessions": 5, "top_songs": 3}


@pytest.fixture(scope="module")
def lastfm_plays(workdir) -> Path:
    plays = workdir / "lastfm" / "plays.tsv"
    plays.parent.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-m", "datagen.lastfm", "--out", str(plays), "--plays", "5000", "--users", "12",
                    "--start-date", "2009-01-01", "--end-date", "2009-01-20", "--seed", "3"],
                   cwd=ROOT, check=True, capture_output=True)
    return plays


def assert_lastfm_tables_are_duckdbs(env, plays: Path) -> None:
    from bench.duckdb_lastfm import lastfm_tables, published_tables

    duck = lastfm_tables(plays, **LASTFM_CONF)
    assert env.row_count("bronze.lastfm_plays") == duck["accepted"]
    published = published_tables(lambda t: env.catalog().load_table(t).scan().to_arrow().to_pylist())
    assert published == {"top_sessions": duck["top_sessions"], "top_songs": duck["top_songs"]}


def test_lastfm_dag_publishes_what_duckdb_computes(full_run, lastfm_plays):
    """The second DAG, run as the first: its form's values become its jobs' flags (it
    has no dates). A second run changing nothing is tests/integration/test_lastfm_pipeline.py."""
    env, _ = full_run
    proc = env.dags_test(DATES[0], {"plays": str(lastfm_plays), **LASTFM_CONF}, dag_id="lastfm_sessions")
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    [run] = env.runs("lastfm_sessions")
    assert env.task_states(run["run_id"], "lastfm_sessions") == {"lastfm_ingest": "success",
                                                                  "lastfm_sessions": "success"}
    assert_lastfm_tables_are_duckdbs(env, lastfm_plays)


@pytest.fixture(scope="module")
def scheduler_env(workdir, landing):
    yield from running_env(workdir, landing, "scheduler", 2)


def test_a_run_finishes_after_its_scheduler_is_killed_and_restarted(scheduler_env, lastfm_plays):
    """kill -9 of the scheduler (and the tasks it runs) mid-run, then a restart: the
    new scheduler takes over the dead one's task and runs it again, and the run ends
    with the tables a clean run computes, one ops.job_runs row per stage. The
    two-task LastFM DAG keeps this short; its tasks run as the GoodNote DAG's do
    (dags/pipeline_tasks.py)."""
    env = scheduler_env
    conf = json.dumps({"plays": str(lastfm_plays), **LASTFM_CONF})
    trigger = env.start_trigger_script("--dag", "lastfm_sessions", "--conf", conf, "--timeout", "3600")
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        runs = env.runs("lastfm_sessions")
        if runs and "running" in env.task_states(runs[0]["run_id"], "lastfm_sessions").values():
            break
        time.sleep(3)
    else:
        trigger.kill()
        raise AssertionError("no task of the run started running")
    env.kill_scheduler()
    env.start()  # starts what is not running: the scheduler
    out, err = trigger.communicate(timeout=3000)
    assert trigger.returncode == 0, out[-5000:] + err[-3000:]
    [run] = env.runs("lastfm_sessions")
    assert env.task_states(run["run_id"], "lastfm_sessions") == {"lastfm_ingest": "success",
                                                                  "lastfm_sessions": "success"}
    assert_lastfm_tables_are_duckdbs(env, lastfm_plays)
    assert sorted(r[1] for r in env.table_rows("ops.job_runs")) == ["lastfm_ingest", "lastfm_sessions"]
