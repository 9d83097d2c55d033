"""The project's Trino server for tests: started if not running, stopped after
only if this process started it. Clients log in exactly as analysts do: HTTPS
with the generated CA certificate and a password from platform.env."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import requests
import trino
from trino.auth import BasicAuthentication

from iceberg_catalog.config import settings

ROOT = Path(__file__).resolve().parents[2]
TRINO_SH = ROOT / "infra" / "trino.sh"
CA_CERT = ROOT / ".local" / "trino" / "tls" / "trino-ca.pem"
PASSWORD_VARIABLES = {"analyst": "TRINO_ANALYST_PASSWORD", "etl": "TRINO_ETL_PASSWORD"}


def trino_is_running() -> bool:
    return subprocess.run(["bash", str(TRINO_SH), "status"], capture_output=True).returncode == 0


@dataclass
class TrinoService:
    https_port: int
    http_port: int
    ca_cert: Path
    started_here: bool

    def password(self, user: str) -> str:
        return settings()[PASSWORD_VARIABLES[user]]

    def connect(self, user: str, password: str | None = None, schema: str = "gold"):
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
            catalog="iceberg",
            schema=schema,
        )

    def query(self, sql: str, user: str = "analyst", schema: str = "gold") -> list[tuple]:
        conn = self.connect(user, schema=schema)
        try:
            cur = conn.cursor()
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]
        finally:
            conn.close()

    def columns_and_rows(self, sql: str, user: str = "analyst") -> tuple[list[str], list[tuple]]:
        conn = self.connect(user)
        try:
            cur = conn.cursor()
            cur.execute(sql)
            rows = [tuple(r) for r in cur.fetchall()]
            return [d[0] for d in cur.description], rows
        finally:
            conn.close()


def start_trino() -> TrinoService:
    started = False
    if not trino_is_running():
        subprocess.run(["bash", str(TRINO_SH), "start"], check=True)
        started = True
    s = settings()  # read after start: start adds TRINO_HTTP_PORT to older platform.env files
    return TrinoService(int(s["TRINO_PORT"]), int(s["TRINO_HTTP_PORT"]), CA_CERT, started)


def stop_trino(service: TrinoService) -> None:
    if service.started_here:
        subprocess.run(["bash", str(TRINO_SH), "stop"], check=True)
