"""Fixtures the end-to-end tests share: the Kafka broker and the live tables, the
Airflow tests' landing data and one running Airflow.

``running_airflow`` (api-server, scheduler, dag-processor of an isolated environment)
serves every test that asks for it, in any module, and is stopped and its databases
dropped right after the last of them rather than at the end of the session: its three
services would otherwise keep taking CPU from the tests after them on a 2-core machine.
"""
from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from airflow_service import DATES, ROOT, AirflowEnv, generate_landing, running_env  # noqa: E402
from speed_layer_service import empty_live_tables  # noqa: E402

_SHARED = pytest.StashKey[AirflowEnv]()
_LAST_USER = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def kafka() -> str:
    """The project's broker (infra/kafka.sh), started if it is not running and
    then stopped again; its host:port."""
    kafka_sh = ROOT / "infra" / "kafka.sh"
    was_running = subprocess.run(["bash", str(kafka_sh), "status"], capture_output=True).returncode == 0
    subprocess.run(["bash", str(kafka_sh), "start"], check=True)
    yield subprocess.run(["bash", str(kafka_sh), "bootstrap"], check=True, capture_output=True, text=True).stdout.strip()
    if not was_running:
        subprocess.run(["bash", str(kafka_sh), "stop"], check=True)


@pytest.fixture
def live(spark, kafka) -> dict[str, str]:
    """Empty live tables and a topic of the test's own on the project's broker."""
    empty_live_tables(spark)
    return {"topic": f"live-{uuid.uuid4().hex[:8]}", "bootstrap": kafka}


@pytest.fixture(scope="session")
def airflow_workdir(tmp_path_factory, platform) -> Path:
    subprocess.run(["bash", str(ROOT / "infra/package.sh")], cwd=ROOT, check=True, capture_output=True)
    return tmp_path_factory.mktemp("airflow_e2e")


@pytest.fixture(scope="session")
def airflow_landing(airflow_workdir) -> Path:
    out = airflow_workdir / "landing"
    # The challenge generator spreads events over [start, start + days - 1] to
    # the second, so the last day holds at most one boundary second: ask for one more.
    generate_landing(out, days=len(DATES) + 1, start_date=DATES[0])
    event_dates = duckdb.sql(f"""SELECT DISTINCT CAST(CAST(timestamp AS TIMESTAMP) AS DATE)::VARCHAR AS d
        FROM read_csv_auto('{out}/user_interactions/*.csv', all_varchar=true) ORDER BY d""").fetchall()
    assert [d for (d,) in event_dates] == DATES
    return out


@pytest.fixture(scope="session")
def running_airflow(request, airflow_workdir, airflow_landing):
    """The shared running environment. Its DAG starts paused, as new DAGs do: a run
    triggered there waits until someone unpauses it (infra/airflow/trigger.py does)."""
    for env in running_env(airflow_workdir, airflow_landing, "shared", 1):
        request.config.stash[_SHARED] = env
        yield env


@pytest.hookimpl(trylast=True)  # after -k/-m have deselected what will not run
def pytest_collection_modifyitems(config, items):
    # fixturenames holds every fixture an item needs, directly or through others.
    users = [item.nodeid for item in items if "running_airflow" in getattr(item, "fixturenames", ())]
    if users:
        config.stash[_LAST_USER] = users[-1]


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    if item.nodeid == item.config.stash.get(_LAST_USER, None):
        env = item.config.stash.get(_SHARED, None)
        if env is not None:
            env.destroy()  # the fixture's own teardown later finds nothing left to do
