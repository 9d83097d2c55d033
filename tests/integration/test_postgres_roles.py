"""Each PostgreSQL role can do its job and nothing more (infra/postgres.sh).
Their jobs are the rest of the suite: Spark and PyIceberg write catalogs as
PG_CATALOG, Trino reads and maintains them as PG_TRINO, Airflow and Superset
keep their metadata as PG_AIRFLOW and PG_SUPERSET."""
from __future__ import annotations

import psycopg2
import pytest
from psycopg2 import errors

from iceberg_catalog import config
from tests.databases import connect, query

CLIENT_ROLES = ("PG_CATALOG", "PG_TRINO", "PG_AIRFLOW", "PG_SUPERSET")


@pytest.fixture(scope="module")
def catalog_db(pipeline_run) -> str:
    """The test catalog once the pipeline wrote its tables (as PG_CATALOG)."""
    return config.settings()["ICEBERG_CATALOG_DB"]


def refused(database: str, role: str, sql: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        query(database, sql, role)


def cannot_connect(database: str, role: str) -> None:
    with pytest.raises(psycopg2.OperationalError, match=f'permission denied for database "{database}"'):
        connect(database, role).close()


def test_no_client_role_has_a_power_over_the_server(platform):
    s = config.settings()
    names = [s[f"{role}_USER"] for role in CLIENT_ROLES]
    rows = query("postgres", """SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls
                                FROM pg_roles WHERE rolname = ANY(%s) ORDER BY rolname""", params=(names,))
    assert rows == [(name, False, False, False, False, False) for name in sorted(names)]
    assert s["PG_USER"] not in names


def test_the_catalog_role_owns_the_catalog_and_nothing_else(catalog_db):
    owners = query(catalog_db, """SELECT relname, pg_get_userbyid(relowner) FROM pg_class
                                  WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 1""")
    catalog_user = config.settings()["PG_CATALOG_USER"]
    assert owners == [("iceberg_namespace_properties", catalog_user), ("iceberg_tables", catalog_user)]
    cannot_connect(config.settings()["AIRFLOW_DB"], "PG_CATALOG")
    refused("postgres", "PG_CATALOG", "CREATE DATABASE made_by_the_catalog_role")
    refused("postgres", "PG_CATALOG", "CREATE ROLE made_by_the_catalog_role")


def test_trino_reads_the_catalog_and_moves_table_pointers_only(catalog_db):
    tables = query(catalog_db, "SELECT table_namespace, table_name FROM iceberg_tables ORDER BY 1, 2")
    assert ("gold", "sessions") in tables
    assert query(catalog_db, "SELECT table_namespace, table_name FROM iceberg_tables ORDER BY 1, 2", "PG_TRINO") == tables
    # A commit through Trino (the maintenance DAG's optimize) is an UPDATE of the pointer.
    query(catalog_db, "UPDATE iceberg_tables SET metadata_location = metadata_location WHERE false", "PG_TRINO")
    refused(catalog_db, "PG_TRINO", "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name) "
                                    "VALUES ('iceberg', 'gold', 'planted')")
    refused(catalog_db, "PG_TRINO", "DELETE FROM iceberg_tables WHERE false")
    refused(catalog_db, "PG_TRINO", "DROP TABLE iceberg_tables")
    refused(catalog_db, "PG_TRINO", "ALTER TABLE iceberg_tables ADD COLUMN planted int")
    refused(catalog_db, "PG_TRINO", "CREATE TABLE planted (i int)")
    cannot_connect(config.settings()["AIRFLOW_DB"], "PG_TRINO")


def test_airflow_and_superset_reach_no_catalog(catalog_db):
    for role in ("PG_AIRFLOW", "PG_SUPERSET"):
        cannot_connect(catalog_db, role)
    cannot_connect(config.settings()["AIRFLOW_DB"], "PG_SUPERSET")
