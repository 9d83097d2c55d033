"""A Trino server for tests, run by the project's own script (infra/trino.sh)
as an isolated instance: its own TRINO_HOME (.local/trino-test), ports and a
2 GB heap, serving the test catalog the tests' Spark writes (ICEBERG_CATALOG_DB
and ICEBERG_WAREHOUSE from tests/conftest.py), never the demo's tables.

Clients log in exactly as analysts do: HTTPS, the generated CA certificate,
passwords from platform.env. The instance is started if not running (or if it
serves another catalog) and stopped afterwards only if this process started it.
"""
from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import requests
import trino
from trino.auth import BasicAuthentication

from iceberg_catalog.config import jdbc_url, settings, warehouse_uri

ROOT = Path(__file__).resolve().parents[2]
TRINO_SH = ROOT / "infra" / "trino.sh"
CA_CERT = ROOT / ".local" / "trino" / "tls" / "trino-ca.pem"
# TEST_TRINO_HOME: a second test instance, for a run on its own ICEBERG_CATALOG_DB beside another.
TEST_TRINO_HOME = Path(os.environ.get("TEST_TRINO_HOME") or ROOT / ".local" / "trino-test")
TEST_HEAP = "2G"
PASSWORD_VARIABLES = {"analyst": "TRINO_ANALYST_PASSWORD", "etl": "TRINO_ETL_PASSWORD", "bi": "TRINO_BI_PASSWORD"}


def read_properties(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class TrinoService:
    home: Path
    https_port: int
    http_port: int
    ca_cert: Path
    started_here: bool = False

    @property
    def env(self) -> dict[str, str]:
        """What infra/trino.sh and bin/trino need to address this instance."""
        return {**os.environ, "TRINO_HOME": str(self.home), "TRINO_PORT": str(self.https_port),
                "TRINO_HTTP_PORT": str(self.http_port), "TRINO_HEAP": TEST_HEAP}

    def script(self, command: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(TRINO_SH), command], env=self.env, check=check,
                              capture_output=not check, text=True)

    def is_running(self) -> bool:
        return self.script("status", check=False).returncode == 0

    def serves_test_catalog(self) -> bool:
        catalog = read_properties(self.home / "etc" / "catalog" / "iceberg.properties")
        return (catalog.get("iceberg.jdbc-catalog.connection-url") == jdbc_url()
                and catalog.get("iceberg.jdbc-catalog.default-warehouse-dir") == warehouse_uri())

    def password(self, user: str) -> str:
        return settings()[PASSWORD_VARIABLES[user]]

    def connect(self, user: str, password: str | None = None, schema: str = "gold", catalog: str = "iceberg"):
        # requests lets REQUESTS_CA_BUNDLE from the environment override a
        # session's CA file, so the session ignores the environment.
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.ca_cert)
        return trino.dbapi.connect(
            host="localhost",
            port=self.https_port,
            user=user,
            auth=BasicAuthentication(user, password if password is not None else self.password(user)),
            http_scheme="https",
            http_session=session,
            catalog=catalog,
            schema=schema,
        )

    def columns_and_rows(self, sql: str, user: str = "analyst", schema: str = "gold") -> tuple[list[str], list[tuple]]:
        conn = self.connect(user, schema=schema)
        try:
            cur = conn.cursor()
            cur.execute(sql)
            rows = [tuple(r) for r in cur.fetchall()]
            return [d[0] for d in cur.description], rows
        finally:
            conn.close()

    def query(self, sql: str, user: str = "analyst", schema: str = "gold") -> list[tuple]:
        return self.columns_and_rows(sql, user, schema)[1]


def start_trino(home: Path = TEST_TRINO_HOME) -> TrinoService:
    configured = read_properties(home / "etc" / "config.properties")
    if configured:
        service = TrinoService(home, int(configured["http-server.https.port"]),
                               int(configured["http-server.http.port"]), CA_CERT)
        if service.is_running() and service.serves_test_catalog():
            return service
        service.script("stop")
    service = TrinoService(home, free_port(), free_port(), CA_CERT, started_here=True)
    service.script("start")
    return service


def stop_trino(service: TrinoService) -> None:
    if service.started_here:
        service.script("stop")
