"""Row-by-row comparison of the Spark pipeline's tables with bench.duckdb_metrics.

Used by tests/integration/test_duckdb_parity.py, and runnable on its own against
any catalog (ICEBERG_CATALOG_DB / ICEBERG_WAREHOUSE select it):

    python -m bench.parity --landing DIR      # compares the catalog's tables with DuckDB on DIR
    python -m bench.parity --dump-spark OUT   # writes the catalog's tables as OUT/<table>.parquet
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
from spark_jobs.pipeline import STAGES

# Table -> columns that identify a row. None = compare as a multiset of whole rows.
# gold.sessions is keyed by (user_id, session_start): session_id is a hash whose
# function the contract leaves open.
TABLE_KEYS: dict[str, list[str] | None] = {
    "bronze.interactions": None,
    "bronze.user_metadata": None,
    "silver.user_dim": ["user_id"],
    "silver.interactions_enriched": None,
    "gold.daily_engagement": ["event_date"],
    "gold.monthly_active_users": ["month"],
    "gold.power_users": ["user_id"],
    "gold.cohort_retention": ["cohort_week", "week_offset"],
    "gold.app_version_latency": ["event_date", "app_version"],
    "gold.app_version_latency_overall": ["app_version"],
    "gold.device_latency": ["device_type"],
    "gold.device_latency_association": [],
    "gold.usage_anomalies": ["event_date", "dimension", "dimension_value", "metric"],
    "gold.sessions": ["user_id", "session_start"],
    "gold.session_daily": ["session_date", "dimension", "dimension_value"],
}
IGNORED_COLUMNS = {"session_id", "source_file"}
REL_TOL = 1e-9
ABS_TOL = 1e-9


def normalize(value):
    """One comparable Python value: dates/timestamps as ISO text, NaN as None, numpy scalars unboxed."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat(sep=" ") if (value.hour, value.minute, value.second) != (0, 0, 0) else value.date().isoformat()
    if isinstance(value, dt.datetime):
        return normalize(pd.Timestamp(value))
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "item"):
        return normalize(value.item())
    return value


def rows(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    return [tuple(normalize(v) for v in r) for r in frame[columns].itertuples(index=False, name=None)]


def values_equal(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return a == b


def compare_table(name: str, spark: pd.DataFrame, duck: pd.DataFrame, max_examples: int = 5) -> list[str]:
    """Differences between the two versions of one table, as readable lines (empty = equal)."""
    columns = [c for c in duck.columns if c not in IGNORED_COLUMNS]
    missing = [c for c in columns if c not in spark.columns]
    if missing:
        return [f"{name}: Spark lacks columns {missing}"]
    keys = TABLE_KEYS[name]
    problems = []
    if len(spark) != len(duck):
        problems.append(f"{name}: {len(spark)} rows in Spark, {len(duck)} in DuckDB")
    if keys is None:
        s, d = Counter(rows(spark, columns)), Counter(rows(duck, columns))
        only_s, only_d = list((s - d).elements()), list((d - s).elements())
        if only_s or only_d:
            problems.append(f"{name}: {len(only_s)} rows only in Spark, e.g. {only_s[:max_examples]}; "
                            f"{len(only_d)} only in DuckDB, e.g. {only_d[:max_examples]} (columns {columns})")
        return problems
    value_cols = [c for c in columns if c not in keys]
    by_key_s = {r[:len(keys)]: r[len(keys):] for r in rows(spark, keys + value_cols)}
    by_key_d = {r[:len(keys)]: r[len(keys):] for r in rows(duck, keys + value_cols)}
    only_s = sorted(set(by_key_s) - set(by_key_d), key=str)
    only_d = sorted(set(by_key_d) - set(by_key_s), key=str)
    if only_s:
        problems.append(f"{name}: {len(only_s)} keys {keys} only in Spark, e.g. "
                        f"{[(k, by_key_s[k]) for k in only_s[:max_examples]]}")
    if only_d:
        problems.append(f"{name}: {len(only_d)} keys {keys} only in DuckDB, e.g. "
                        f"{[(k, by_key_d[k]) for k in only_d[:max_examples]]}")
    mismatched = []
    for key in sorted(set(by_key_s) & set(by_key_d), key=str):
        for col, a, b in zip(value_cols, by_key_s[key], by_key_d[key]):
            if not values_equal(a, b):
                mismatched.append((key, col, a, b))
    if mismatched:
        per_col = Counter(m[1] for m in mismatched)
        problems.append(f"{name}: {len(mismatched)} values differ {dict(per_col)}; e.g. (key, column, spark, duckdb) "
                        f"{mismatched[:max_examples]}")
    return problems


def compare_all(spark_tables: dict[str, pd.DataFrame], duck_tables: dict[str, pd.DataFrame]) -> dict[str, list[str]]:
    return {name: compare_table(name, spark_tables[name], duck_tables[name]) for name in TABLE_KEYS}


def rejected_counts(frame: pd.DataFrame, dataset_column: str) -> dict[str, int]:
    return {k: int(v) for k, v in frame.groupby(dataset_column).size().items()}


def read_spark_tables(spark) -> dict[str, pd.DataFrame]:
    """The catalog's tables (main branch) as pandas, through an existing SparkSession."""
    tables = {n: spark.table(f"iceberg.{n}") for n in TABLE_KEYS}
    # The GoodNote datasets' rejects: another pipeline's share the table.
    tables["bronze.rejected_rows"] = spark.table("iceberg.bronze.rejected_rows").where(
        "dataset IN ('user_interactions', 'user_metadata')")
    return {n: df.toPandas() for n, df in tables.items()}


def dump_spark_tables(out: Path) -> None:
    from spark_jobs.spark_session import build_spark_session

    spark = build_spark_session("parity-dump")
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in read_spark_tables(spark).items():
        frame.to_parquet(out / f"{name}.parquet", index=False)
    spark.stop()


def run_spark_pipeline(run_id: str, landing: Path) -> None:
    """Runs the five jobs' entry points in this process (one SparkSession) over every date of LANDING."""

    for stage in STAGES:
        extra = ["--interactions", str(landing / "user_interactions"), "--metadata", str(landing / "user_metadata")] \
            if stage.name == "ingest" else []
        stage.main(["--run-id", run_id, *extra])


def drop_tables(spark) -> None:
    from spark_jobs.pipeline import TABLES

    for spec in TABLES.values():
        spark.sql(f"DROP TABLE IF EXISTS {spec.identifier} PURGE")


def load_dumped_tables(out: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_parquet(p) for p in out.glob("*.parquet")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dump-spark", type=Path)
    ap.add_argument("--run-spark", action="store_true",
                    help="first drop the catalog's tables and run the Spark pipeline over --landing")
    ap.add_argument("--landing", type=Path)
    ap.add_argument("--spark-dump", type=Path, help="compare a dump made by --dump-spark instead of the live catalog")
    args = ap.parse_args(argv)
    if args.run_spark:
        from spark_jobs.spark_session import build_spark_session

        drop_tables(build_spark_session("parity"))
        run_spark_pipeline("parity", args.landing)
    if args.dump_spark:
        dump_spark_tables(args.dump_spark)
        return 0
    from bench import duckdb_metrics

    duck = duckdb_metrics.tables_as_frames(duckdb_metrics.compute_all(args.landing))
    if args.spark_dump:
        spark_tables = load_dumped_tables(args.spark_dump)
    else:
        from spark_jobs.spark_session import build_spark_session

        spark_tables = read_spark_tables(build_spark_session("parity"))
    problems = compare_all(spark_tables, duck)
    for name, lines in problems.items():
        print(f"{'OK  ' if not lines else 'DIFF'} {name}")
        for line in lines:
            print("     " + line[:2000])
    return 1 if any(problems.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
