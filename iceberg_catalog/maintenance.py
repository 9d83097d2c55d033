"""Table maintenance through Trino: compact small files, expire old snapshots,
remove orphan files, for every table the pipelines and the speed layer write.

Runs as Trino's ``etl`` user on catalog ``iceberg_maintenance`` (the only
catalog whose connector allows table procedures, visible only to ``etl``):

    python -m iceberg_catalog.maintenance                       # all tables, all actions
    python -m iceberg_catalog.maintenance --table gold.sessions --action optimize

Retention is what analysts can time-travel back to: snapshots younger than
``--snapshot-retention`` (default 7 days) stay readable. Orphan files younger
than ``--orphan-retention`` (default 3 days) are kept, because a Spark job
still writing has files no snapshot references yet. Branches (write-audit-
publish runs) keep their own snapshots: expire_snapshots never drops a
snapshot a branch or tag still points to.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

MAINTENANCE_CATALOG = "iceberg_maintenance"
MAINTENANCE_USER = "etl"
ACTIONS = ("optimize", "expire_snapshots", "remove_orphan_files")
DEFAULT_SNAPSHOT_RETENTION = "7d"
DEFAULT_ORPHAN_RETENTION = "3d"
DEFAULT_FILE_SIZE_THRESHOLD = "128MB"  # files smaller than this are rewritten by optimize
_DURATION = re.compile(r"^\d+(\.\d+)?(ns|us|ms|s|m|h|d)$")
_DATA_SIZE = re.compile(r"^\d+(\.\d+)?(B|kB|MB|GB|TB)$")
_TABLE = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")


class MaintenanceError(RuntimeError):
    pass


@dataclass(frozen=True)
class Policy:
    snapshot_retention: str = DEFAULT_SNAPSHOT_RETENTION
    orphan_retention: str = DEFAULT_ORPHAN_RETENTION
    file_size_threshold: str = DEFAULT_FILE_SIZE_THRESHOLD

    def __post_init__(self):
        for name in ("snapshot_retention", "orphan_retention"):
            if not _DURATION.match(getattr(self, name)):
                raise MaintenanceError(f"{name}={getattr(self, name)!r} is not a Trino duration like '7d' or '12h'")
        if not _DATA_SIZE.match(self.file_size_threshold):
            raise MaintenanceError(f"file_size_threshold={self.file_size_threshold!r} is not a data size like '128MB'")


@dataclass
class ActionResult:
    table: str
    action: str
    seconds: float
    data_files_before: int
    data_files_after: int
    snapshots_before: int
    snapshots_after: int


def qualified(table: str) -> str:
    if not _TABLE.match(table):
        raise MaintenanceError(f"table {table!r} is not 'namespace.table' in lower case")
    namespace, name = table.split(".")
    return f'{MAINTENANCE_CATALOG}."{namespace}"."{name}"'


def action_sql(table: str, action: str, policy: Policy) -> str:
    """The ALTER TABLE ... EXECUTE statement of one action on one table."""
    target = qualified(table)
    if action == "optimize":
        return f"ALTER TABLE {target} EXECUTE optimize(file_size_threshold => '{policy.file_size_threshold}')"
    if action == "expire_snapshots":
        return f"ALTER TABLE {target} EXECUTE expire_snapshots(retention_threshold => '{policy.snapshot_retention}')"
    if action == "remove_orphan_files":
        return f"ALTER TABLE {target} EXECUTE remove_orphan_files(retention_threshold => '{policy.orphan_retention}')"
    raise MaintenanceError(f"unknown action {action!r}; expected one of {ACTIONS}")


def metadata_table(table: str, suffix: str) -> str:
    namespace, name = table.split(".")
    return f'{MAINTENANCE_CATALOG}."{namespace}"."{name}${suffix}"'


def published_tables() -> list[str]:
    """Every table the pipelines (spark_jobs/pipeline.py) and the speed layer
    (spark_jobs/stream.py) write, sorted. The live tables are compacted while
    the stream appends to them: a rewrite and appends do not conflict."""
    from spark_jobs.pipeline import TABLES
    from spark_jobs.stream import TABLES as LIVE_TABLES

    return sorted(set(TABLES) | {spec.name for spec in LIVE_TABLES})


def connect_as_etl():
    """A Trino connection as ``etl`` over HTTPS, trusting the generated CA."""
    import requests
    import trino
    from trino.auth import BasicAuthentication

    from iceberg_catalog.config import PROJECT_ROOT, settings

    s = settings()
    ca_cert = Path(s.get("TRINO_CA_CERT", PROJECT_ROOT / ".local" / "trino" / "tls" / "trino-ca.pem"))
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise replace our CA file
    session.verify = str(ca_cert)
    return trino.dbapi.connect(
        host=s.get("TRINO_HOST", "localhost"),
        port=int(s["TRINO_PORT"]),
        user=MAINTENANCE_USER,
        auth=BasicAuthentication(MAINTENANCE_USER, s["TRINO_ETL_PASSWORD"]),
        http_scheme="https",
        http_session=session,
        catalog=MAINTENANCE_CATALOG,
        source="iceberg-maintenance",
    )


def _scalar(cursor, sql: str) -> int:
    cursor.execute(sql)
    return int(cursor.fetchall()[0][0])


def table_exists(cursor, table: str) -> bool:
    """Loads the table itself (listings of a JDBC catalog may lag a fresh create)."""
    from trino.exceptions import TrinoUserError

    try:
        cursor.execute(f"SELECT count(*) FROM {metadata_table(table, 'refs')}")
        cursor.fetchall()
        return True
    except TrinoUserError as e:
        if e.error_name in ("TABLE_NOT_FOUND", "SCHEMA_NOT_FOUND"):
            return False
        raise


def run_action(cursor, table: str, action: str, policy: Policy) -> ActionResult:
    count_files = f"SELECT count(*) FROM {metadata_table(table, 'files')} WHERE content = 0"
    count_snapshots = f"SELECT count(*) FROM {metadata_table(table, 'snapshots')}"
    files_before, snapshots_before = _scalar(cursor, count_files), _scalar(cursor, count_snapshots)
    started = time.monotonic()
    cursor.execute(action_sql(table, action, policy))
    cursor.fetchall()
    seconds = round(time.monotonic() - started, 3)
    return ActionResult(table, action, seconds, files_before, _scalar(cursor, count_files),
                        snapshots_before, _scalar(cursor, count_snapshots))


def maintain(tables: list[str], actions: list[str], policy: Policy, connect=connect_as_etl) -> list[ActionResult]:
    """Runs the actions, in the given order, on each table that exists."""
    unknown = [a for a in actions if a not in ACTIONS]
    if unknown:
        raise MaintenanceError(f"unknown actions {unknown}; expected some of {ACTIONS}")
    conn = connect()
    try:
        cursor = conn.cursor()
        results = []
        for table in tables:
            qualified(table)  # validates the name before any SQL is built from it
            if not table_exists(cursor, table):
                print(f"skip {table}: not created yet", file=sys.stderr)
                continue
            for action in actions:
                results.append(run_action(cursor, table, action, policy))
                print(json.dumps(asdict(results[-1])), file=sys.stderr)
        return results
    finally:
        conn.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m iceberg_catalog.maintenance", description=__doc__.splitlines()[0])
    p.add_argument("--table", action="append", dest="tables", metavar="NAMESPACE.TABLE",
                   help="table to maintain (repeatable); default: every published table")
    p.add_argument("--action", action="append", dest="actions", choices=ACTIONS,
                   help="action to run (repeatable); default: all, in the order optimize, expire, orphans")
    p.add_argument("--snapshot-retention", default=DEFAULT_SNAPSHOT_RETENTION)
    p.add_argument("--orphan-retention", default=DEFAULT_ORPHAN_RETENTION)
    p.add_argument("--file-size-threshold", default=DEFAULT_FILE_SIZE_THRESHOLD)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    policy = Policy(a.snapshot_retention, a.orphan_retention, a.file_size_threshold)
    results = maintain(a.tables or published_tables(), a.actions or list(ACTIONS), policy)
    print(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
