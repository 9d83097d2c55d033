"""Every DAG file parses without a database or network, and goodnote_pipeline is
wired as specified: tasks, dependencies, assets, params, retries.

Parsing runs in a fresh interpreter whose metadata DB is unreachable and whose
sockets refuse to connect, so any DB or connection lookup at parse time fails
the import. It uses BundleDagBag, the same loader as the dag-processor.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
UNREACHABLE_DB = "postgresql+psycopg2://nobody:nothing@127.0.0.1:9/unreachable"

# The in-process imports below (pipeline_tasks) load Airflow's config: keep it
# away from ~/airflow and from any real database.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-unit-"))
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", UNREACHABLE_DB)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
sys.path.insert(0, str(DAGS))

import pipeline_tasks as P  # noqa: E402

PARSE_WITHOUT_IO = r"""
import json, socket, sys
from pathlib import Path

def refuse(*args, **kwargs):
    raise OSError(f"network access at DAG parse time: {args[1:] or kwargs}")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse

import importlib
from airflow.dag_processing.dagbag import BundleDagBag
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk.definitions.param import ParamValidationError

dags = Path(sys.argv[1])
bag = BundleDagBag(dag_folder=str(dags), bundle_path=dags, bundle_name="dags-folder")
helpers_imported = [importlib.import_module(Path(h).stem).__name__ for h in sys.argv[2:]]

def accepts(param, value):
    try:
        param.resolve(value)
        return True
    except ParamValidationError:
        return False

GOOD = {"goodnote_pipeline": {
            "start_date": "2023-07-01", "end_date": None, "full_refresh": True, "salt_buckets": 16,
            "hot_key_min_share": 0.05, "broadcast_max_bytes": 10485760, "join_strategy": "salted",
            "session_gap_seconds": 1200, "duration_cap_ms": 0, "power_user_fraction": 1,
            "latency_actions": ["page_view", "edit"], "anomaly_min_events": 1, "max_rejected_share": 0.5,
            "interactions": "/data/in", "metadata": None},
        "lastfm_sessions": {"plays": "/data/plays.tsv", "max_rejected_share": 0, "session_gap_seconds": 1,
                            "top_sessions": 1, "top_songs": 1000}}
BAD = {"goodnote_pipeline": {
           "start_date": "07/01/2023", "end_date": "2023-13-01", "full_refresh": "yes", "salt_buckets": 0,
           "hot_key_min_share": 1.5, "broadcast_max_bytes": "ten", "join_strategy": "random",
           "session_gap_seconds": 0, "duration_cap_ms": -1, "power_user_fraction": 0,
           "latency_actions": [], "anomaly_min_events": 2.5, "max_rejected_share": 1.01, "interactions": 3},
       "lastfm_sessions": {"plays": 3, "max_rejected_share": -0.1, "session_gap_seconds": 0, "top_sessions": 0,
                           "top_songs": 2.5}}

def describe_params(dag_id, params):
    return {
        "names": sorted(params.keys()),
        "defaults": {name: params[name] for name in params.keys()},
        "good": {name: accepts(params.get_param(name), value) for name, value in GOOD[dag_id].items()},
        "bad": {name: accepts(params.get_param(name), value) for name, value in BAD[dag_id].items()},
    }

described = {}
for dag_id, dag in bag.dags.items():
    described[dag_id] = {
        "fileloc": dag.fileloc,
        "doc_md": dag.doc_md,
        "catchup": dag.catchup,
        "start_date_tz": str(dag.start_date.tzinfo) if dag.start_date else None,
        "tags": sorted(dag.tags),
        "max_active_runs": dag.max_active_runs,
        "timetable": type(dag.timetable).__name__,
        "timetable_summary": getattr(dag.timetable, "expression", None),
        "order": [t.task_id for t in dag.topological_sort()],
        "tasks": {
            t.task_id: {
                "upstream": sorted(t.upstream_task_ids),
                "outlets": [o.name for o in t.outlets],
                "operator": type(t).__name__,
                "spark_submit": isinstance(t, SparkSubmitOperator),
                "application": getattr(t, "application", None),
                "py_files": getattr(t, "py_files", None),
                "conn_id": getattr(t, "_conn_id", None),
                "retries": t.retries,
                "backoff": t.retry_exponential_backoff,
            }
            for t in dag.tasks
        },
        "params": describe_params(dag_id, dag.params) if dag_id in GOOD else None,
    }
print("DAGBAG_JSON" + json.dumps({"import_errors": bag.import_errors, "dags": described,
                                  "helpers_imported": helpers_imported}))
"""


@pytest.fixture(scope="module")
def parsed(tmp_path_factory) -> dict:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "AIRFLOW_HOME": str(tmp_path_factory.mktemp("airflow_home")),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": UNREACHABLE_DB,
    }
    proc = subprocess.run([sys.executable, "-c", PARSE_WITHOUT_IO, str(DAGS), *helper_files()], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("DAGBAG_JSON"))
    return json.loads(line.removeprefix("DAGBAG_JSON"))


@pytest.fixture(scope="module")
def dag(parsed) -> dict:
    return parsed["dags"]["goodnote_pipeline"]


@pytest.fixture(scope="module")
def lastfm_dag(parsed) -> dict:
    return parsed["dags"]["lastfm_sessions"]


def ignored_names() -> set[str]:
    lines = (DAGS / ".airflowignore").read_text().splitlines() if (DAGS / ".airflowignore").exists() else []
    return {l.strip() for l in lines if l.strip() and not l.startswith("#")}


def dag_files() -> list[Path]:
    return [f for f in sorted(DAGS.glob("*.py")) if f.name not in ignored_names()]


def helper_files() -> list[str]:
    """Modules in dags/ that .airflowignore hides from the parser: imported explicitly."""
    return [f.name for f in sorted(DAGS.glob("*.py")) if f.name in ignored_names()]


def test_every_dag_file_parses_without_db_or_network(parsed):
    assert parsed["import_errors"] == {}
    files_with_dags = {Path(d["fileloc"]).name for d in parsed["dags"].values()}
    assert files_with_dags == {f.name for f in dag_files()}
    assert parsed["helpers_imported"] == [Path(h).stem for h in helper_files()]


def test_dag_conventions(dag):
    doc = (DAGS / "goodnote_pipeline.py").read_text().split('"""')[1]
    assert dag["doc_md"] == doc
    assert dag["catchup"] is False
    assert dag["start_date_tz"] == "UTC"
    assert dag["tags"] == ["goodnote", "iceberg", "spark"]
    assert dag["max_active_runs"] == 1
    # Daily data intervals: the run of D covers [D, D+1).
    assert (dag["timetable"], dag["timetable_summary"]) in {("CronDataIntervalTimetable", "@daily"), ("CronDataIntervalTimetable", "0 0 * * *")}


def test_tasks_and_dependencies(dag):
    upstream = {task_id: t["upstream"] for task_id, t in dag["tasks"].items()}
    assert upstream == {
        "ingest": [],
        "enrich": ["ingest"],
        "engagement": ["enrich"],
        "performance": ["enrich"],
        "sessions": ["enrich"],
    }
    assert dag["order"][:2] == ["ingest", "enrich"]  # acyclic, sorted


def test_every_task_is_one_spark_submit_of_its_stage(dag):
    for task_id, t in dag["tasks"].items():
        assert t["spark_submit"], f"{task_id} is a {t['operator']}"
        assert t["application"] == str(ROOT / "spark_jobs" / f"{task_id}.py")
        assert t["py_files"] == str(ROOT / ".local" / "dist" / "pipeline.zip")
        assert t["conn_id"] == "spark_default"
        assert (t["retries"], t["backoff"]) == (2, 2.0)


def test_stage_outlets_are_the_stage_tables(dag):
    assert {task_id: t["outlets"] for task_id, t in dag["tasks"].items()} == {
        "ingest": ["iceberg.bronze.interactions", "iceberg.bronze.user_metadata", "iceberg.bronze.rejected_rows"],
        "enrich": ["iceberg.silver.user_dim", "iceberg.silver.interactions_enriched"],
        "engagement": ["iceberg.gold.daily_engagement", "iceberg.gold.monthly_active_users", "iceberg.gold.power_users",
                       "iceberg.gold.cohort_retention"],
        "performance": ["iceberg.gold.app_version_latency", "iceberg.gold.app_version_latency_overall",
                        "iceberg.gold.device_latency", "iceberg.gold.device_latency_association",
                        "iceberg.gold.usage_anomalies"],
        "sessions": ["iceberg.gold.sessions", "iceberg.gold.session_daily"],
    }


def test_the_trigger_form_has_every_stage_option_with_the_contract_defaults(dag):
    assert dag["params"]["defaults"] == {
        "start_date": None, "end_date": None, "full_refresh": False,
        "interactions": None, "metadata": None, "max_rejected_share": 0.05,
        "broadcast_max_bytes": 64 * 1024 * 1024, "hot_key_min_share": 0.01, "salt_buckets": 16,
        "join_strategy": "auto", "min_metadata_match_share": 0.05, "min_metadata_match_share_error": 1e-9,
        "duration_cap_ms": 28_800_000, "power_user_fraction": 0.01,
        "latency_actions": ["page_view"], "anomaly_min_events": 20,
        "session_gap_seconds": 1800,
    }


@pytest.mark.parametrize("dag_id", ["goodnote_pipeline", "lastfm_sessions"])
def test_params_schema_accepts_good_and_rejects_bad_values(parsed, dag_id):
    params = parsed["dags"][dag_id]["params"]
    assert params["good"] == dict.fromkeys(params["good"], True)
    assert params["bad"] == dict.fromkeys(params["bad"], False)


@pytest.mark.parametrize("dag_id", ["goodnote_pipeline", "lastfm_sessions"])
def test_dag_form_and_job_command_lines_come_from_the_same_declarations(parsed, dag_id):
    """Every stage option is a form field and a flag of its job (and of the
    one-application pipeline); every stage is a task whose outlets are its tables."""
    from spark_jobs import pipeline

    dag, stages = parsed["dags"][dag_id], pipeline.PIPELINES[dag_id]
    form_fields = set(dag["params"]["names"]) - {"start_date", "end_date", "full_refresh"}
    assert set(dag["tasks"]) == {stage.name for stage in stages}
    all_flags = set(pipeline.parser(dag_id)._option_string_actions)
    for stage in stages:
        job_flags = set(stage.parser()._option_string_actions)
        assert dag["tasks"][stage.name]["outlets"] == [f"iceberg.{t}" for t in stage.tables]
        for p in stage.params:
            assert p.name in form_fields and p.flag in job_flags and p.flag in all_flags, p.name
        form_fields -= {p.name for p in stage.params}
    assert form_fields == set(), f"form fields no stage declares: {form_fields}"


def test_lastfm_dag_is_triggered_by_hand_with_its_options_in_the_form(lastfm_dag):
    assert (lastfm_dag["timetable"], lastfm_dag["catchup"], lastfm_dag["max_active_runs"]) == ("NullTimetable", False, 1)
    assert {task_id: (t["upstream"], t["outlets"], t["application"], t["retries"])
            for task_id, t in lastfm_dag["tasks"].items()} == {
        "lastfm_ingest": ([], ["iceberg.bronze.lastfm_plays", "iceberg.bronze.rejected_rows"],
                          str(ROOT / "spark_jobs" / "lastfm_ingest.py"), 2),
        "lastfm_sessions": (["lastfm_ingest"], ["iceberg.gold.lastfm_top_sessions", "iceberg.gold.lastfm_top_songs"],
                            str(ROOT / "spark_jobs" / "lastfm_sessions.py"), 2),
    }
    # No dates: a run reads the whole dump.
    assert lastfm_dag["params"]["defaults"] == {"plays": None, "max_rejected_share": 0.05,
                                                "session_gap_seconds": 1200, "top_sessions": 50, "top_songs": 10}


def test_stage_options_become_the_jobs_flags():
    from spark_jobs.pipeline import BY_NAME

    params = {"latency_actions": ["page_view", "edit"], "anomaly_min_events": 5, "salt_buckets": 8}
    assert P.stage_options(BY_NAME["performance"], params) == [
        "--latency-actions", "page_view,edit", "--anomaly-min-events", "5"]
    args, _ = BY_NAME["performance"].parse_args(P.stage_options(BY_NAME["performance"], params))
    assert (args.latency_actions, args.anomaly_min_events) == (("page_view", "edit"), 5)
    # An optional path left empty in the form is not passed: the job's own default applies.
    assert P.stage_options(BY_NAME["ingest"], {"interactions": None, "metadata": "/m", "max_rejected_share": 0.1}) == [
        "--metadata", "/m", "--max-rejected-share", "0.1"]


# --- the pure pieces of pipeline_tasks ---

UTC = timezone.utc


def test_daily_interval_processes_its_own_date():
    start, end = datetime(2023, 7, 2, tzinfo=UTC), datetime(2023, 7, 3, tzinfo=UTC)
    assert P.event_dates({}, start, end) == (date(2023, 7, 2), date(2023, 7, 2))
    assert P.date_args(P.event_dates({}, start, end)) == ["--start-date", "2023-07-02", "--end-date", "2023-07-02"]


def test_range_interval_and_param_overrides():
    start, end = datetime(2023, 7, 1, tzinfo=UTC), datetime(2023, 7, 4, tzinfo=UTC)
    assert P.event_dates({}, start, end) == (date(2023, 7, 1), date(2023, 7, 3))
    assert P.event_dates({"start_date": "2023-06-01", "end_date": "2023-06-05"}, start, end) == (
        date(2023, 6, 1), date(2023, 6, 5))
    assert P.event_dates({"start_date": "2023-06-01"}, start, end) == (date(2023, 6, 1), date(2023, 6, 1))
    assert P.event_dates({"full_refresh": True, "start_date": "2023-06-01"}, start, end) is None
    assert P.event_dates({}, None, None) is None
    assert P.date_args(None) == []
    with pytest.raises(ValueError, match="end_date 2023-06-01 is before start_date 2023-06-05"):
        P.event_dates({"start_date": "2023-06-05", "end_date": "2023-06-01"}, start, end)


def test_branch_and_yarn_tag_are_deterministic_and_safe():
    run_id = "scheduled__2023-07-02T00:00:00+00:00"
    assert P.wap_branch(run_id) == "wap_scheduled_2023_07_02t00_00_00_00_00"
    tag = P.yarn_tag("goodnote_pipeline", "enrich", run_id)
    assert tag == P.yarn_tag("goodnote_pipeline", "enrich", run_id) != P.yarn_tag("goodnote_pipeline", "ingest", run_id)
    assert tag == tag.lower() and len(tag) <= 100 and tag.startswith("airflow-")


def test_logged_command_is_shell_quoted():
    cmd = ["spark-submit", "--master", "local[*]", "--name", "goodnote_pipeline.ingest.manual__2023-07-01T00:00:00+00:00",
           "/repo/spark_jobs/ingest.py", "--run-id", "manual__2023-07-01T00:00:00+00:00"]
    line = P.copy_pastable(cmd)
    assert "'local[*]'" in line
    import shlex
    assert shlex.split(line) == cmd


def test_earlier_local_attempt_is_found_and_stopped():
    """A stand-in for a lingering spark-submit (same --name) with a child process."""
    import psutil

    name = f"goodnote_pipeline.ingest.test__{os.getpid()}"
    code = "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"
    lingering = subprocess.Popen([sys.executable, "-c", code, "--name", name])
    try:
        deadline = time.monotonic() + 10
        while not psutil.Process(lingering.pid).children() and time.monotonic() < deadline:
            time.sleep(0.1)
        [found] = P.local_submit_processes(name)
        assert found.pid == lingering.pid
        [child] = found.children(recursive=True)
        assert child.cmdline() == ["sleep", "300"]

        P.terminate([found, child], grace_seconds=5)

        assert lingering.wait(timeout=5) is not None
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
        assert P.local_submit_processes(name) == []
    finally:
        if lingering.poll() is None:
            lingering.kill()
