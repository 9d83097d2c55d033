"""A Superset server for tests, run by the project's own script
(infra/superset.sh) as an isolated instance: its own SUPERSET_HOME
(.local/superset-test), metadata database (superset_test, recreated, so every
run starts as a clean checkout does), port, and the test Trino instance
(tests/e2e/trino_service.py) as its database.

``SupersetClient`` talks to the REST API as the admin (JWT + CSRF token, as
any API client must).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import requests

from iceberg_catalog.config import settings
from tests.databases import drop_database
from tests.e2e.trino_service import ROOT, TrinoService, free_port

SUPERSET_SH = ROOT / "infra" / "superset.sh"
TEST_SUPERSET_HOME = ROOT / ".local" / "superset-test"
TEST_SUPERSET_DB = "superset_test"


@dataclass
class SupersetService:
    home: Path
    port: int
    database: str
    trino: TrinoService

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SUPERSET_HOME": str(self.home), "SUPERSET_PORT": str(self.port),
                "SUPERSET_DB": self.database, "TRINO_PORT": str(self.trino.https_port)}

    def script(self, command: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(SUPERSET_SH), command], env=self.env, check=check,
                              capture_output=True, text=True)

    @property
    def admin_password(self) -> str:
        return settings()["SUPERSET_ADMIN_PASSWORD"]

    def client(self) -> "SupersetClient":
        return SupersetClient(self.url, "admin", self.admin_password)


def start_superset(trino: TrinoService, home: Path = TEST_SUPERSET_HOME) -> SupersetService:
    """From nothing: no home folder, an empty metadata database, then infra/superset.sh start."""
    service = SupersetService(home, free_port(), TEST_SUPERSET_DB, trino)
    service.script("stop", check=False)
    shutil.rmtree(home, ignore_errors=True)
    drop_database(TEST_SUPERSET_DB)
    out = service.script("start", check=False)
    if out.returncode != 0:
        raise RuntimeError(f"infra/superset.sh start failed:\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}")
    return service


def stop_superset(service: SupersetService) -> None:
    service.script("stop", check=False)


class SupersetClient:
    """The REST API as a logged-in user: a bearer token, and the CSRF token
    (with its session cookie) that Superset wants on every POST."""

    def __init__(self, url: str, username: str, password: str):
        self.url = url
        self.session = requests.Session()
        self.session.trust_env = False
        token = self.session.post(f"{url}/api/v1/security/login", json={
            "username": username, "password": password, "provider": "db", "refresh": False}, timeout=60)
        token.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        csrf = self.session.get(f"{url}/api/v1/security/csrf_token/", timeout=60)
        csrf.raise_for_status()
        self.session.headers["X-CSRFToken"] = csrf.json()["result"]
        self.session.headers["Referer"] = url

    def get(self, path: str, **params) -> dict:
        r = self.session.get(f"{self.url}{path}", params=params, timeout=300)
        r.raise_for_status()
        return r.json()

    def list(self, resource: str, columns: list[str]) -> list[dict]:
        """Every row of /api/v1/<resource>/ (rison query, one page of 100 is plenty here)."""
        q = f"(columns:!({','.join(columns)}),page:0,page_size:100)"
        return self.get(f"/api/v1/{resource}/", q=q)["result"]

    def chart_data(self, chart_id: int) -> requests.Response:
        """The chart's saved query (its query_context) run by Superset against its database."""
        return self.session.get(f"{self.url}/api/v1/chart/{chart_id}/data/", params={"format": "json"}, timeout=300)
