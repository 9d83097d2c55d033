"""Fixture helpers for the Airflow end-to-end tests.

Each test environment is isolated from the developer's running platform: its
own AIRFLOW_HOME, Airflow metadata database, Iceberg catalog database,
warehouse directory and landing directory, all on the project's PostgreSQL.
Everything goes through the project's own scripts (infra/airflow.sh), so the
tests exercise what `make demo` runs.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from iceberg_catalog import config  # noqa: E402
from tests.databases import drop_database, fresh_database, query  # noqa: E402

DAG_ID = "goodnote_pipeline"
# The event dates of the shared landing data: one run per date, and each
# more date costs five spark-submits.
DATES = ["2023-07-01", "2023-07-02"]


@dataclass
class AirflowEnv:
    """One isolated Airflow + Iceberg catalog, driven through infra/airflow.sh."""

    home: Path
    airflow_db: str
    catalog_db: str
    warehouse: Path
    landing: Path
    port: int
    # The scheduler's health server: its own port, so instances running side by side all get one.
    health_port: int
    started: bool = field(default=False)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW_DB": self.airflow_db,
            "AIRFLOW_PORT": str(self.port),
            "AIRFLOW_SCHEDULER_HEALTH_PORT": str(self.health_port),
            "ICEBERG_CATALOG_DB": self.catalog_db,
            "ICEBERG_WAREHOUSE": str(self.warehouse),
            "LANDING_DIR": str(self.landing),
            "PIPELINE_SPARK_MASTER": "local[*]",
            # Only the runs a test asks for: no scheduled run of "yesterday".
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            # Small data on 2 shared cores: few shuffle partitions, modest heaps.
            "SPARK_SHUFFLE_PARTITIONS": "4",
            # A task whose process died (its scheduler killed) is failed, and retried, after 30 s, not 5 min.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        }

    def create(self) -> "AirflowEnv":
        fresh_database(self.airflow_db, "airflow")
        fresh_database(self.catalog_db)
        self.warehouse.mkdir(parents=True, exist_ok=True)
        self.script("install")
        self.cli("db", "migrate")
        return self

    def script(self, *args: str, check: bool = True, timeout: float = 600,
               extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run(["bash", str(ROOT / "infra/airflow.sh"), *args], env={**self.env, **(extra_env or {})},
                              cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"infra/airflow.sh {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
        return proc

    def cli(self, *args: str, check: bool = True, timeout: float = 3600) -> subprocess.CompletedProcess:
        return self.script("cli", *args, check=check, timeout=timeout)

    def start(self) -> None:
        self.script("start", timeout=400)
        self.started = True

    def stop(self) -> None:
        if self.started:
            self.script("stop", check=False)
            self.started = False

    def destroy(self) -> None:
        self.stop()
        drop_database(self.airflow_db)
        drop_database(self.catalog_db)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def dags_test(self, logical_date: str, conf: dict | None = None, dag_id: str = DAG_ID) -> subprocess.CompletedProcess:
        """`airflow dags test`: the whole DAG in one process, no scheduler."""
        args = ["dags", "test", dag_id, logical_date]
        if conf:
            args += ["-c", json.dumps(conf)]
        return self.cli(*args, check=False)

    def cli_json(self, *args: str):
        """The JSON document of `airflow ... -o json` (log lines may precede it)."""
        out = self.cli(*args, "-o", "json").stdout
        return json.loads(next(line for line in reversed(out.splitlines()) if line.startswith("[")))

    def task_states(self, run_id: str, dag_id: str = DAG_ID) -> dict[str, str]:
        return {r["task_id"]: r["state"] for r in self.cli_json("tasks", "states-for-dag-run", dag_id, run_id)}

    def runs(self, dag_id: str = DAG_ID) -> list[dict]:
        return self.cli_json("dags", "list-runs", dag_id)

    def trigger_script(self, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess:
        env = {**self.env, "PLATFORM_STATE": str(ROOT / ".local")}
        return subprocess.run([sys.executable, str(ROOT / "infra/airflow/trigger.py"), *args], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout)

    def start_trigger_script(self, *args: str) -> subprocess.Popen:
        """infra/airflow/trigger.py in the background: it triggers, waits and prints each task's state."""
        env = {**self.env, "PLATFORM_STATE": str(ROOT / ".local")}
        return subprocess.Popen([sys.executable, str(ROOT / "infra/airflow/trigger.py"), *args], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def kill_scheduler(self) -> None:
        """SIGKILL to the scheduler's process group: the scheduler, its executor and the tasks it runs."""
        os.killpg(int((self.home / "run" / "scheduler.pid").read_text()), signal.SIGKILL)

    def asset_events(self, run_id: str) -> list[tuple[str, str]]:
        """(asset name, task) of every asset event the run's tasks emitted, from Airflow's metadata DB."""
        return query(self.airflow_db, f"""SELECT a.name, e.source_task_id FROM asset_event e JOIN asset a ON a.id = e.asset_id
                                          WHERE e.source_run_id = '{run_id}' ORDER BY 1""", role="PG_AIRFLOW")

    # --- reading the published (main) tables of this environment's catalog ---

    def catalog(self):
        from pyiceberg.catalog import load_catalog

        settings = {**config.settings(), "ICEBERG_CATALOG_DB": self.catalog_db,
                    "ICEBERG_WAREHOUSE": str(self.warehouse)}
        return load_catalog(config.CATALOG_NAME, **config.pyiceberg_properties(settings))

    def table_rows(self, table: str) -> list[tuple]:
        """Every row of the table's main branch, floats rounded, sorted: comparable across runs."""
        arrow = self.catalog().load_table(table).scan().to_arrow()
        rows = [tuple(_comparable(v) for v in row.values()) for row in arrow.to_pylist()]
        return sorted(rows, key=repr)

    def row_count(self, table: str) -> int:
        return self.catalog().load_table(table).scan().to_arrow().num_rows

    def snapshot_count(self, table: str) -> int:
        return len(self.catalog().load_table(table).snapshots())

    def refs(self, table: str) -> dict[str, int]:
        """Branch name -> head snapshot id: main and any unpublished wap_ branch."""
        return {name: ref.snapshot_id for name, ref in self.catalog().load_table(table).metadata.refs.items()}

    def quality_results(self, run_id: str) -> list[dict]:
        from pyiceberg.expressions import EqualTo

        table = self.catalog().load_table("ops.quality_results")
        return table.scan(row_filter=EqualTo("run_id", run_id)).to_arrow().to_pylist()


def free_port(preferred: int) -> int:
    out = subprocess.run(["bash", "-c", f". infra/lib.sh; free_port {preferred}"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def new_env(workdir: Path, landing: Path, name: str, port_offset: int) -> AirflowEnv:
    """A created (databases migrated, not started) environment named ``name``; ports near the platform's."""
    suffix = uuid.uuid4().hex[:6]
    base_port = int(config.settings().get("AIRFLOW_PORT", 8080))
    env = AirflowEnv(home=workdir / f"{name}_home", airflow_db=f"airflow_e2e_{name}_{suffix}",
                     catalog_db=f"iceberg_e2e_{name}_{suffix}", warehouse=workdir / f"{name}_warehouse",
                     landing=landing, port=free_port(base_port + 100 + port_offset),
                     health_port=free_port(base_port + 200 + port_offset))
    return env.create()


def running_env(workdir: Path, landing: Path, name: str, port_offset: int):
    """An environment whose Airflow services run (scheduler, api-server, dag-processor), destroyed after."""
    env = new_env(workdir, landing, name, port_offset)
    try:
        env.start()
        yield env
    finally:
        env.destroy()


def _comparable(value):
    # Sums of doubles may differ in the last bits with partition order.
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.9g}")
    return value


def generate_landing(out: Path, days: int = 3, start_date: str = "2023-07-01", events: int = 3000,
                     bad_batch: str | None = None) -> dict:
    subprocess.run(
        [sys.executable, "-m", "datagen", "--mode", "challenge", "--out", str(out), "--events", str(events),
         "--users", "200", "--start-date", start_date, "--days", str(days), "--seed", "7",
         *(["--bad-batch", bad_batch] if bad_batch else [])],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    return json.loads((out / "_manifest.json").read_text())
