"""Iceberg branch bookkeeping for write-audit-publish.

A stage writes its tables to branch B; the gate reads B, and publishing is a
fast-forward of ``main`` to B's head followed by dropping B. Fast-forward is a
metadata-only commit, so readers of main switch to the audited snapshot
atomically per table and never see a half-written one.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import SparkSession

CATALOG = "iceberg"
# The snapshot summary key every speed-layer commit carries (spark_jobs/stream.py).
SPEED_LAYER_PROPERTY = "speed-layer.query-id"


@dataclass(frozen=True)
class TableRefs:
    table: str  # namespace.table
    main: int | None  # snapshot id of main, None if main has no snapshot yet
    branch: int | None  # snapshot id of the run's branch, None if it does not exist


def identifier(table: str) -> str:
    return f"{CATALOG}.{table}"


def branch_heads(spark: SparkSession, table: str) -> dict[str, int]:
    """Branch name -> head snapshot id, from the table's metadata through the
    Iceberg Java API: no Spark job, unlike a query of the ``refs`` table."""
    try:
        jtable = spark._jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(spark._jsparkSession, identifier(table))
        refs = jtable.refs()
        return {name: refs.get(name).snapshotId() for name in refs.keySet() if refs.get(name).isBranch()}
    except AttributeError:  # no JVM handle (Spark Connect): ask the metadata table
        return {r["name"]: r["snapshot_id"] for r in
                spark.sql(f"SELECT name, snapshot_id FROM {identifier(table)}.refs WHERE type = 'BRANCH'").collect()}


def table_refs(spark: SparkSession, table: str, branch: str) -> TableRefs:
    heads = branch_heads(spark, table)
    return TableRefs(table, heads.get("main"), heads.get(branch))


def publish(spark: SparkSession, refs: TableRefs, branch: str) -> str:
    """Fast-forwards main to the branch head and drops the branch. Returns what it did."""
    if refs.branch is None:
        return "nothing to publish (no branch)"
    if refs.branch != refs.main:
        spark.sql(f"CALL {CATALOG}.system.fast_forward('{refs.table}', 'main', '{branch}')")
        action = f"main {refs.main} -> {refs.branch}"
    else:
        action = f"main already at {refs.branch}"
    spark.sql(f"ALTER TABLE {identifier(refs.table)} DROP BRANCH IF EXISTS {branch}")
    return action + f"; dropped branch {branch}"


def speed_layer_appends_only(spark: SparkSession, table: str, base: int | None, main: int) -> bool:
    """Whether every commit on main after ``base`` up to ``main`` is a speed-layer
    append: rows of the stream's own dataset, which no stage run owns (the
    speed layer appends its rejects to bronze.rejected_rows, which the ingest
    stages also write)."""
    jtable = spark._jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(spark._jsparkSession, identifier(table))
    snapshot = jtable.snapshot(main)
    while snapshot is not None and snapshot.snapshotId() != base:
        if snapshot.operation() != "append" or not snapshot.summary().containsKey(SPEED_LAYER_PROPERTY):
            return False
        parent = snapshot.parentId()
        snapshot = jtable.snapshot(parent) if parent is not None else None
    return snapshot is not None or base is None
