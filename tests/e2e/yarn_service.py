"""The project's single-node YARN and Spark History Server, for tests.

``running_yarn()`` starts what is not running (``infra/hadoop.sh``) and stops,
afterwards, only what it started, so a developer's running cluster survives
the tests. The other helpers talk to the real services over their REST APIs.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HADOOP_SH = ROOT / "infra" / "hadoop.sh"
SPARK_SUBMIT = ROOT / ".venv" / "bin" / "spark-submit"
APPLICATION_ID = re.compile(r"application_\d+_\d+")
DAEMONS = ("yarn-resourcemanager", "yarn-nodemanager", "spark-history")


@dataclass(frozen=True)
class YarnCluster:
    env: dict[str, str]  # what `infra/hadoop.sh env` exports

    @property
    def rm_url(self) -> str:
        return self.env["YARN_RM_URL"]

    @property
    def history_url(self) -> str:
        return self.env["SPARK_HISTORY_URL"]


def parse_exports(text: str) -> dict[str, str]:
    """`export NAME="value"` lines -> {NAME: value} ($PATH expanded from ours)."""
    env = {}
    for name, value in re.findall(r'^export (\w+)="(.*)"$', text, flags=re.M):
        env[name] = value.replace("$PATH", os.environ.get("PATH", ""))
    return env


def daemon_states() -> dict[str, bool]:
    """{daemon: running?} from `infra/hadoop.sh status`."""
    out = subprocess.run(["bash", str(HADOOP_SH), "status"], capture_output=True, text=True).stdout
    return {name: f"{name}: running" in out for name in DAEMONS}


@contextmanager
def running_yarn():
    before = daemon_states()
    if not all(before.values()):
        subprocess.run(["bash", str(HADOOP_SH), "start"], check=True)
    env_text = subprocess.run(["bash", str(HADOOP_SH), "env"], check=True, capture_output=True, text=True).stdout
    try:
        yield YarnCluster(parse_exports(env_text))
    finally:
        if not before["spark-history"]:
            subprocess.run(["bash", str(HADOOP_SH), "history-stop"], check=True)
        if not (before["yarn-resourcemanager"] or before["yarn-nodemanager"]):
            subprocess.run(["bash", str(HADOOP_SH), "yarn-stop"], check=True)


def get_json(url: str) -> dict | list:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.load(resp)


def rm_app(cluster: YarnCluster, app_id: str) -> dict:
    """The ResourceManager's record of one application (state, finalStatus, name...)."""
    return get_json(f"{cluster.rm_url}/ws/v1/cluster/apps/{app_id}")["app"]


def wait_for_final_state(cluster: YarnCluster, app_id: str, timeout: float = 120) -> dict:
    """Polls until the RM reports the application done (FINISHED, FAILED or KILLED)."""
    deadline = time.monotonic() + timeout
    while True:
        app = rm_app(cluster, app_id)
        if app["state"] in ("FINISHED", "FAILED", "KILLED") or time.monotonic() > deadline:
            return app
        time.sleep(2)


def wait_for_history(cluster: YarnCluster, app_id: str, timeout: float = 120) -> dict | None:
    """The History Server's entry for the application, once it has parsed the
    event log (it rescans every 5 s), or None after the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        apps = get_json(f"{cluster.history_url}/api/v1/applications?limit=500")
        for app in apps:
            if app["id"] == app_id and app["attempts"] and app["attempts"][0].get("completed"):
                return app
        time.sleep(3)
    return None


def platform_env() -> dict[str, str]:
    """Where the checkout's state and downloads are: a job running from the
    --py-files zip cannot derive them from its own path."""
    import pyspark

    return {"PLATFORM_HOME": str(ROOT), "PLATFORM_STATE": os.environ.get("PLATFORM_STATE", str(ROOT / ".local")),
            "PLATFORM_CACHE": os.environ.get("PLATFORM_CACHE", str(ROOT / ".cache")),
            # spark-submit otherwise looks for pyspark with whatever python3 is on PATH.
            "SPARK_HOME": str(Path(pyspark.__file__).parent),
            "PYSPARK_PYTHON": str(ROOT / ".venv" / "bin" / "python")}


def spark_submit(args: list[str], env: dict[str, str], log_path: Path, timeout: float = 900) -> str | None:
    """Runs spark-submit ARGS with ENV over ours; output to LOG_PATH. Returns the
    YARN application id it printed (None for local masters). Raises on failure,
    quoting the log's tail."""
    full_env = {**os.environ, **platform_env(), **env}
    with open(log_path, "w") as log:
        proc = subprocess.run([str(SPARK_SUBMIT), *args], env=full_env, cwd=ROOT,
                              stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
    text = log_path.read_text()
    if proc.returncode != 0:
        raise AssertionError(f"spark-submit {' '.join(args)} exited {proc.returncode}; "
                             f"log {log_path}:\n{text[-4000:]}")
    found = APPLICATION_ID.search(text)
    return found.group(0) if found else None


def wait_for_state(cluster: YarnCluster, name: str, states: set[str], timeout: float = 180) -> dict | None:
    """The newest application called NAME once it is in one of STATES, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        apps = (get_json(f"{cluster.rm_url}/ws/v1/cluster/apps").get("apps") or {}).get("app", [])
        mine = sorted((a for a in apps if a["name"] == name), key=lambda a: a["startedTime"])
        if mine and mine[-1]["state"] in states:
            return mine[-1]
        time.sleep(2)
    return None
