"""Databases of the tests' own PostgreSQL, made the way the platform makes them
(infra/postgres.sh: owned by the client's role, closed to every other role)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg2

from iceberg_catalog import config

POSTGRES_SH = Path(__file__).resolve().parents[1] / "infra" / "postgres.sh"


def fresh_database(name: str, kind: str = "catalog") -> None:
    """An empty database NAME for a catalog, Airflow or Superset (KIND)."""
    subprocess.run(["bash", str(POSTGRES_SH), "database", name, kind, "--fresh"], check=True, capture_output=True)


def drop_database(name: str) -> None:
    subprocess.run(["bash", str(POSTGRES_SH), "drop-database", name], check=True, capture_output=True)


def connect(database: str, role: str = "PG"):
    """A connection as a platform role: PG (the bootstrap superuser), PG_CATALOG,
    PG_TRINO, PG_AIRFLOW or PG_SUPERSET, the prefixes of its settings."""
    s = config.settings()
    conn = psycopg2.connect(host=s["PG_HOST"], port=s["PG_PORT"], user=s[f"{role}_USER"],
                            password=s[f"{role}_PASSWORD"], dbname=database)
    conn.autocommit = True
    return conn


def query(database: str, sql: str, role: str = "PG", params: tuple = ()) -> list[tuple]:
    conn = connect(database, role)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()
