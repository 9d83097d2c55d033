"""How a pipeline stage becomes one task: one spark-submit that writes, audits
and publishes; its trigger-form fields, its assets, its retries.

Everything about a stage comes from its declaration (spark_jobs/<stage>.py,
listed in spark_jobs/pipeline.py): the application, the tables (assets), the
options (trigger-form params). Imported by the DAG of each pipeline; listed in
``.airflowignore`` because it defines no DAG. Nothing here does I/O at import
time: the connection, the process table and the YARN ResourceManager are only
touched inside ``StageOperator.execute``, on a worker.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
import sys
import urllib.request
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psutil
from airflow.providers.apache.spark.hooks.spark_submit import _mask_sensitive_values
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Asset, BaseOperatorLink, Param
from airflow.sdk.exceptions import AirflowException, AirflowFailException

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SPARK_JOBS_DIR = PROJECT_ROOT / "spark_jobs"
PACKAGE_ZIP = PROJECT_ROOT / ".local" / "dist" / "pipeline.zip"
CATALOG = "iceberg"

# The repository root holds iceberg_catalog/ (pure Python). Appended to this
# interpreter's path only: spark-submit children must get it from the zip.
if str(PROJECT_ROOT) not in sys.path:
    sys.path.append(str(PROJECT_ROOT))
from spark_jobs.pipeline import PIPELINES  # noqa: E402, F401  (the DAG files take the pipelines from here)
from spark_jobs.stage import GATE_BLOCKED_EXIT, Stage, wap_branch  # noqa: E402

DEFAULT_DATA_DOCS_PORT = 8765
DATE = {"type": ["null", "string"], "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
LIVE_YARN_STATES = "NEW,NEW_SAVING,SUBMITTED,ACCEPTED,RUNNING"


def table_asset(table: str) -> Asset:
    namespace, name = table.split(".")
    return Asset(name=f"{CATALOG}.{table}", uri=f"iceberg://{CATALOG}/{namespace}/{name}")


def stage_assets(stage: Stage) -> list[Asset]:
    return [table_asset(t) for t in stage.tables]


def trigger_form(stages: list[Stage]) -> dict[str, Param]:
    """The run's dates (when its stages take dates), then every option of every stage, with its default and bounds."""
    form = {}
    if any(stage.dated for stage in stages):
        form = {
            "start_date": Param(None, **DATE, description="First event date (inclusive); overrides the data interval."),
            "end_date": Param(None, **DATE, description="Last event date (inclusive); defaults to start_date."),
            "full_refresh": Param(False, type="boolean", description="Process every date in the landing zone."),
        }
    for stage in stages:
        for p in stage.params:
            if p.name in form:
                raise ValueError(f"stage option {p.name} of {stage.name} is declared by another stage too")
            form[p.name] = Param(p.form_default(), **p.json_schema(), description=p.help, section=f"{stage.name} options")
    return form


# Every pipeline DAG's task defaults: a fault is retried (twice, backing off); a
# blocked gate is not (StageOperator).
TASK_DEFAULTS = {
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
}


def stage_tasks(stages: list[Stage]) -> dict[str, "StageOperator"]:
    """One task per stage, each downstream of the stages it reads (``Stage.after``); call inside the DAG."""
    tasks = {stage.name: StageOperator(stage=stage) for stage in stages}
    for stage in stages:
        for upstream in stage.after:
            tasks[upstream] >> tasks[stage.name]
    return tasks


def stage_options(stage: Stage, params: dict[str, Any]) -> list[str]:
    """The stage's flags for the run's trigger-form values (unset optional paths left out)."""
    return [arg for p in stage.params if params.get(p.name) is not None
            for arg in (p.flag, p.argument(params[p.name]))]


def event_dates(params: dict[str, Any], interval_start: datetime | None,
                interval_end: datetime | None) -> tuple[date, date] | None:
    """Inclusive event-date range a run processes; None means every date.

    Params win over the data interval. The interval is half-open, so the daily
    run of D, [D, D+1), processes D alone.
    """
    if params.get("full_refresh"):
        return None
    start, end = params.get("start_date"), params.get("end_date")
    if start or end:
        first = date.fromisoformat(start or end)
        last = date.fromisoformat(end or start)
    elif interval_start is not None:
        first = interval_start.date()
        last = (interval_end - timedelta(microseconds=1)).date() if interval_end > interval_start else first
    else:
        return None
    if last < first:
        raise ValueError(f"end_date {last} is before start_date {first}")
    return first, last


def date_args(dates: tuple[date, date] | None) -> list[str]:
    if dates is None:
        return []
    return ["--start-date", dates[0].isoformat(), "--end-date", dates[1].isoformat()]


def application_name(dag_id: str, task_id: str, run_id: str) -> str:
    return f"{dag_id}.{task_id}.{run_id}"


def yarn_tag(dag_id: str, task_id: str, run_id: str) -> str:
    """YARN lower-cases tags and caps them at 100 chars; a digest is safe and unique."""
    return "airflow-" + hashlib.sha1(application_name(dag_id, task_id, run_id).encode()).hexdigest()[:24]


def copy_pastable(cmd: list[str]) -> str:
    return _mask_sensitive_values(shlex.join(cmd))


# --- stopping an earlier attempt (a retry must not leave two copies running) ---

def local_submit_processes(app_name: str) -> list[psutil.Process]:
    """spark-submit processes (any user we can see) launched with `--name app_name`."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        args = process.info["cmdline"] or []
        if process.pid != os.getpid() and any(a == "--name" and b == app_name for a, b in zip(args, args[1:])):
            found.append(process)
    return found


def terminate(processes: list[psutil.Process], grace_seconds: float = 10) -> None:
    """SIGTERM, then SIGKILL for whatever outlives the grace period."""
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=grace_seconds)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(alive, timeout=grace_seconds)


def live_yarn_apps(rm_url: str, tag: str) -> list[str]:
    url = f"{rm_url}/ws/v1/cluster/apps?applicationTags={tag}&states={LIVE_YARN_STATES}"
    with urllib.request.urlopen(url, timeout=30) as resp:
        apps = (json.load(resp).get("apps") or {}).get("app") or []
    return [app["id"] for app in apps]


def kill_yarn_app(rm_url: str, app_id: str) -> None:
    req = urllib.request.Request(
        f"{rm_url}/ws/v1/cluster/apps/{app_id}/state", method="PUT",
        data=json.dumps({"state": "KILLED"}).encode(), headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(req, timeout=30).close()


def data_docs_port() -> int:
    """DATA_DOCS_PORT of the worker's environment, else of the generated platform.env."""
    from spark_jobs.quality.data_docs import data_docs_port as port

    return port()


def gate_page_url(run_id: str, stage: str, port: int) -> str:
    return f"http://localhost:{port}/gates/{wap_branch(run_id)}/{stage}.html"


class DataDocsLink(BaseOperatorLink):
    """The task's gate page: computed from the run id and the stage alone (the
    gate writes it at gates/<wap branch>/<stage>.html of the served Data Docs),
    so it exists even when the gate blocked. Airflow 3 evaluates the link on the
    worker when the task ends and keeps it in XCom: no plugin needed."""

    name = "Data Docs"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return gate_page_url(ti_key.run_id, operator.stage, data_docs_port())


def record_failed_attempt(context: Any) -> None:
    """A driver that was killed (or timed out) could not write its ops.job_runs
    row, which it left ``running``: the failed attempt is recorded here, through
    PyIceberg (no Spark), replacing that row. A row the driver finished itself
    (failed, blocked) is left as it is."""
    import pyarrow as pa
    from pyiceberg.exceptions import NoSuchTableError
    from pyiceberg.expressions import And, EqualTo

    from iceberg_catalog.config import load_pyiceberg_catalog
    from iceberg_catalog.tables import JOB_RUNS

    run_id, job, ti = context["run_id"], context["task"].task_id, context["ti"]
    try:
        table = load_pyiceberg_catalog().load_table(JOB_RUNS.name)
    except NoSuchTableError:
        return
    rows = table.scan(row_filter=And(EqualTo("run_id", run_id), EqualTo("job", job))).to_arrow().to_pylist()
    if rows and rows[0]["status"] != "running":
        return
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    metrics = {"error": str(context.get("exception"))[:4000], "recorded_by": "airflow",
               "try_number": ti.try_number, **json.loads((rows[0]["metrics_json"] if rows else None) or "{}")}
    row = {"run_id": run_id, "job": job, "started_at": rows[0]["started_at"] if rows else now, "finished_at": now,
           "status": "failed", "rows_in": None, "rows_out": None, "rows_rejected": None,
           "metrics_json": json.dumps(metrics, default=str, sort_keys=True)}
    table.upsert(pa.Table.from_pylist([row], schema=table.schema().as_arrow()), join_cols=["run_id", "job"])


class StageOperator(SparkSubmitOperator):
    """One stage of the run: a spark-submit of ``spark_jobs/<stage>.py`` that
    writes the run's branch, audits it and publishes it (or not).

    Adds to SparkSubmitOperator: the run's event dates and the stage's trigger-form
    options as job arguments; a deterministic application name and YARN tag per
    (dag, task, run); stopping an earlier attempt of the same task before
    submitting; a shell-quoted command line in the log; and the verdict told apart
    from faults: a blocked gate fails the task for good, anything else is retried.
    The outlets are the stage's tables: Airflow records them only when the task
    succeeds, which is when they were published.
    """

    operator_extra_links = (DataDocsLink(),)

    def __init__(self, *, stage: Stage, **kwargs: Any) -> None:
        kwargs.setdefault("conn_id", "spark_default")
        kwargs.setdefault("task_id", stage.name)
        kwargs.setdefault("on_retry_callback", record_failed_attempt)
        kwargs.setdefault("on_failure_callback", record_failed_attempt)
        super().__init__(
            application=str(SPARK_JOBS_DIR / f"{stage.name}.py"),
            py_files=str(PACKAGE_ZIP),
            name="{{ dag.dag_id }}.{{ task.task_id }}.{{ run_id }}",
            application_args=["--run-id", "{{ run_id }}"],
            spark_binary=os.environ.get("PIPELINE_SPARK_SUBMIT", "spark-submit"),
            outlets=stage_assets(stage),
            **kwargs,
        )
        self.stage = stage.name
        self._declaration = stage

    def execute(self, context: Any) -> None:
        dag_id, run_id = context["dag"].dag_id, context["run_id"]
        params = context["params"]
        dates = (event_dates(params, context.get("data_interval_start"), context.get("data_interval_end"))
                 if self._declaration.dated else None)
        # Kept apart so that a second execute() of the same object (dag.test()
        # retries in-process) does not append the run's arguments twice.
        self._templated_args = getattr(self, "_templated_args", None) or list(self.application_args)
        self.application_args = [*self._templated_args, *date_args(dates), *stage_options(self._declaration, params)]
        # The catalog jars must be on spark-submit's own command line: a JVM that
        # is already running ignores spark.jars set later by the SparkSession builder.
        from iceberg_catalog.config import spark_driver_conf, spark_driver_memory, spark_jars

        self.jars = ",".join(spark_jars())
        tag = yarn_tag(dag_id, self.task_id, run_id)
        self.conf = {**spark_driver_conf(client_compiler=self._declaration.client_compiler), **(self.conf or {}),
                     "spark.yarn.tags": tag}
        self._ensure_spark_submit_on_path()
        # Relative defaults of the jobs (e.g. LANDING_DIR=.local/landing) mean the
        # repository root, as when the logged command is pasted there by hand.
        os.chdir(PROJECT_ROOT)
        hook = self._hook = self._get_hook()
        # A client-mode driver of an earlier attempt may linger on this machine;
        # on YARN its application may also still hold containers.
        self._kill_earlier_local_attempts(application_name(dag_id, self.task_id, run_id))
        if hook._connection["master"].startswith("yarn"):
            properties = os.environ.get("PIPELINE_SPARK_PROPERTIES_FILE")
            if properties:
                # The settings come from this file alone: a SPARK_CONF_DIR would
                # put a directory first on the driver's class path, where JDK 17
                # maps no class archive (iceberg_catalog.config.spark_driver_conf).
                hook._properties_file = properties
                os.environ.pop("SPARK_CONF_DIR", None)
            hook._conf.update(spark_driver_conf(on_yarn=True))
            self._kill_earlier_yarn_attempts(hook, tag)
        else:
            # In local mode the driver runs every task: the heap the jobs and the benchmark assume.
            hook._driver_memory = spark_driver_memory()
        try:
            super().execute(context)
        except AirflowException as exc:
            if f"Error code is: {GATE_BLOCKED_EXIT}." in str(exc):
                url = gate_page_url(run_id, self.stage, data_docs_port())
                raise AirflowFailException(
                    f"quality gate of {self.stage} blocked run {run_id}: error expectations failed (listed in the "
                    f"log above), main left untouched, branch {wap_branch(run_id)} kept. Data Docs: {url}") from exc
            self.log.error("stage %s failed without a verdict on its data (a fault, not a failed audit): "
                           "Airflow retries it", self.stage)
            raise

    def _get_hook(self):
        hook = super()._get_hook()
        # The provider logs " ".join(cmd); a shell-quoted line can be pasted as is.
        hook._mask_cmd = lambda cmd: copy_pastable(cmd) if isinstance(cmd, list) else _mask_sensitive_values(cmd)
        return hook

    def _ensure_spark_submit_on_path(self) -> None:
        venv_bin = PROJECT_ROOT / ".venv" / "bin"
        if shutil.which(self._spark_binary or "spark-submit") is None and (venv_bin / "spark-submit").exists():
            os.environ["PATH"] = f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"

    def _kill_earlier_yarn_attempts(self, hook, tag: str) -> None:
        try:
            rm_url = hook._get_yarn_rm_base_url()
        except ValueError:
            self.log.warning("spark_default has no yarn_resourcemanager_webapp_address; cannot look for earlier attempts")
            return
        for app_id in live_yarn_apps(rm_url, tag):
            self.log.warning("Killing YARN application %s of an earlier attempt (tag %s)", app_id, tag)
            kill_yarn_app(rm_url, app_id)

    def _kill_earlier_local_attempts(self, app_name: str) -> None:
        for process in local_submit_processes(app_name):
            children = process.children(recursive=True)
            self.log.warning("Stopping spark-submit pid %s (and %s) of an earlier attempt", process.pid,
                             [c.pid for c in children])
            terminate([process, *children])
