"""How a pipeline stage becomes one spark-submit: arguments, assets, retries.

Imported by ``goodnote_pipeline.py``; listed in ``.airflowignore`` because it
defines no DAG. Nothing here does I/O at import time: the connection, the
process table and the YARN ResourceManager are only touched inside
``SparkJobOperator.execute``, on a worker.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import sys
import time
import urllib.request
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.hooks.spark_submit import _mask_sensitive_values
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Asset

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SPARK_JOBS_DIR = PROJECT_ROOT / "spark_jobs"
PACKAGE_ZIP = PROJECT_ROOT / ".local" / "dist" / "pipeline.zip"
CATALOG = "iceberg"

# The repository root holds iceberg_catalog/ (pure Python). Appended to this
# interpreter's path only: spark-submit children must get it from the zip.
if str(PROJECT_ROOT) not in sys.path:
    sys.path.append(str(PROJECT_ROOT))
from iceberg_catalog.tables import STAGE_OUTPUTS  # noqa: E402

# Trigger-form params that become job options (None = the job's own default).
ENRICH_OPTIONS = {
    "--broadcast-max-bytes": "broadcast_max_bytes",
    "--hot-key-min-share": "hot_key_min_share",
    "--salt-buckets": "salt_buckets",
}
LIVE_YARN_STATES = "NEW,NEW_SAVING,SUBMITTED,ACCEPTED,RUNNING"


def table_asset(table: str) -> Asset:
    namespace, name = table.split(".")
    return Asset(name=f"{CATALOG}.{table}", uri=f"iceberg://{CATALOG}/{namespace}/{name}")


def stage_assets(stage: str) -> list[Asset]:
    return [table_asset(t) for t in STAGE_OUTPUTS[stage]]


def wap_branch(run_id: str) -> str:
    """Iceberg branch of one DAG run: a run id made safe for `table.branch_<name>`."""
    return "wap_" + re.sub(r"[^a-z0-9]+", "_", run_id.lower()).strip("_")


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


def option_args(options: dict[str, str], params: dict[str, Any]) -> list[str]:
    return [arg for flag, key in options.items() if params.get(key) is not None
            for arg in (flag, str(params[key]))]


def application_name(dag_id: str, task_id: str, run_id: str) -> str:
    return f"{dag_id}.{task_id}.{run_id}"


def yarn_tag(dag_id: str, task_id: str, run_id: str) -> str:
    """YARN lower-cases tags and caps them at 100 chars; a digest is safe and unique."""
    return "airflow-" + hashlib.sha1(application_name(dag_id, task_id, run_id).encode()).hexdigest()[:24]


def copy_pastable(cmd: list[str]) -> str:
    return _mask_sensitive_values(shlex.join(cmd))


# --- stopping an earlier attempt (a retry must not leave two copies running) ---

def local_submit_pids(app_name: str, proc: Path = Path("/proc")) -> list[int]:
    """spark-submit processes (any user we can see) launched with `--name app_name`."""
    pids = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv]
        if any(a == "--name" and b == app_name for a, b in zip(args, args[1:])):
            pids.append(int(entry.name))
    return pids


def descendants(pid: int, proc: Path = Path("/proc")) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def terminate(pids: list[int], grace_seconds: float = 10) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.5)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


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


class SparkJobOperator(SparkSubmitOperator):
    """spark-submit of ``spark_jobs/<job>.py`` for this run's dates, on its WAP branch.

    Adds to SparkSubmitOperator: the run's event dates and trigger-form options
    as job arguments, a deterministic application name and YARN tag per
    (dag, task, run), stopping an earlier attempt of the same task before
    submitting, and a shell-quoted command line in the log.
    """

    def __init__(self, *, job: str, job_args: list[str] | None = None,
                 options: dict[str, str] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("conn_id", "spark_default")
        super().__init__(
            application=str(SPARK_JOBS_DIR / f"{job}.py"),
            py_files=str(PACKAGE_ZIP),
            name="{{ dag.dag_id }}.{{ task.task_id }}.{{ run_id }}",
            application_args=["--run-id", "{{ run_id }}", *(job_args or [])],
            spark_binary=os.environ.get("PIPELINE_SPARK_SUBMIT", "spark-submit"),
            **kwargs,
        )
        self.job = job
        self.options = options or {}

    def execute(self, context: Any) -> None:
        dag_id, run_id = context["dag"].dag_id, context["run_id"]
        params = context["params"]
        dates = event_dates(params, context.get("data_interval_start"), context.get("data_interval_end"))
        # Kept apart so that a second execute() of the same object (dag.test()
        # retries in-process) does not append the run's arguments twice.
        self._templated_args = getattr(self, "_templated_args", None) or list(self.application_args)
        self.application_args = [
            *self._templated_args, *date_args(dates), *option_args(self.options, params),
            "--branch", wap_branch(run_id),
        ]
        # The catalog jars must be on spark-submit's own command line: a JVM that
        # is already running ignores spark.jars set later by the SparkSession builder.
        from iceberg_catalog.config import spark_driver_conf, spark_jars

        self.jars = ",".join(spark_jars())
        tag = yarn_tag(dag_id, self.task_id, run_id)
        self.conf = {**spark_driver_conf(), **(self.conf or {}), "spark.yarn.tags": tag}
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
                hook._properties_file = properties
            self._kill_earlier_yarn_attempts(hook, tag)
        super().execute(context)

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
        for pid in local_submit_pids(app_name):
            tree = [pid, *descendants(pid)]
            self.log.warning("Stopping spark-submit pid %s (and %s) of an earlier attempt", pid, tree[1:])
            terminate(tree)
