"""Reconciliation: the speed layer's tables against the batch computation over the same events.

    python -m spark_jobs.live_reconcile [--against events|tables]

``events`` (default): the batch transforms run over bronze.interactions_live,
every event the stream accepted, joined to silver.user_dim as enrich joins
them. ``tables``: the batch DAG's own gold.sessions and gold.daily_engagement,
for a topic fed the same events as the landing files.

Only what the stream has closed is compared: windows whose end and sessions
whose end plus the gap the watermark has passed (each query's latest
watermark in ops.stream_progress); daily active users for every date. Late
events are in bronze but in no live table, so with late events the two differ
by them (their count is printed). Exact while the stream is caught up (stopped,
or after a ``--until-caught-up`` run): a query still working on a batch is behind the others.
Prints each table's differences; exit 1 if there are any.
"""
from __future__ import annotations

import argparse
import sys

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.stream import LIVE_DAU, LIVE_INTERACTIONS, LIVE_LATENCY, LIVE_SESSIONS, STREAM_PROGRESS
from spark_jobs.transforms import performance as P
from spark_jobs.transforms import sessions as S

SAMPLE_ROWS = 10


def latency_windows(events: DataFrame, latency_actions: list[str]) -> DataFrame:
    """gold.live_app_version_latency's rows of ``events``, all windows."""
    return (P.page_loads(events, latency_actions)
            .groupBy(F.window("event_ts", "1 minute").alias("window"), "app_version")
            .agg(F.count(F.lit(1)).alias("events"), P.latency_percentiles(F.col("duration_ms")))
            .select(F.col("window.start").alias("window_start"), F.col("window.end").alias("window_end"),
                    "app_version", "events", *P.percentile_columns()))


def daily_active_users(events: DataFrame) -> DataFrame:
    return events.groupBy("event_date").agg(F.countDistinct("user_id").alias("dau"))


def closed_sessions(sessions: DataFrame, watermark, gap_seconds: int) -> DataFrame:
    return sessions.where(F.col("session_end") + F.make_interval(secs=F.lit(gap_seconds)) < F.lit(watermark))


def differences(live: DataFrame, expected: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(rows only in live, rows only in expected), duplicates counted."""
    return live.exceptAll(expected), expected.exceptAll(live)


def watermarks(spark: SparkSession) -> dict[str, object]:
    rows = (spark.table(STREAM_PROGRESS.identifier).where(F.col("watermark").isNotNull())
            .groupBy("query").agg(F.max("watermark").alias("watermark")).collect())
    return {r["query"]: r["watermark"] for r in rows}


def main(argv: list[str] | None = None) -> int:
    from spark_jobs.spark_session import build_spark_session

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", choices=("events", "tables"), default="events")
    parser.add_argument("--session-gap-seconds", type=int, default=S.DEFAULT_GAP_SECONDS)
    parser.add_argument("--latency-actions", default=",".join(P.DEFAULT_LATENCY_ACTIONS))
    args = parser.parse_args(argv)
    spark = build_spark_session("speed layer reconciliation")
    marks = watermarks(spark)
    late = spark.table(STREAM_PROGRESS.identifier).groupBy("query").agg(F.sum("late_events").alias("n")).collect()
    print("watermarks: " + ", ".join(f"{q} {w}" for q, w in sorted(marks.items())))
    print("late events (not in live tables): " + (", ".join(f"{r['query']} {r['n']}" for r in late) or "none"))

    events = spark.table(LIVE_INTERACTIONS.identifier)
    live_sessions = spark.table(LIVE_SESSIONS.identifier)
    live_dau = spark.table(LIVE_DAU.identifier).select("event_date", "dau")
    gap = args.session_gap_seconds
    comparisons = []
    if args.against == "events":
        users = (spark.table("iceberg.silver.user_dim").select("user_id", *S.SESSION_DIMENSIONS)
                 if spark.catalog.tableExists("iceberg.silver.user_dim")
                 else spark.createDataFrame([], "user_id STRING, device_type STRING, country STRING"))
        actions = [a.strip() for a in args.latency_actions.split(",") if a.strip()]
        if "latency" in marks:
            comparisons.append(("gold.live_app_version_latency", spark.table(LIVE_LATENCY.identifier),
                                latency_windows(events, actions).where(F.col("window_end") <= F.lit(marks["latency"]))))
        batch_sessions = S.sessionize(events.join(users, "user_id", "left"), gap)
        dau = daily_active_users(events)
    else:
        batch_sessions = spark.table("iceberg.gold.sessions").join(
            live_sessions.select("session_date").distinct(), "session_date", "left_semi")
        dau = spark.table("iceberg.gold.daily_engagement").select("event_date", "dau").join(
            live_dau.select("event_date"), "event_date", "left_semi")
    if "sessions" in marks:
        comparisons.append(("gold.live_sessions", live_sessions,
                            closed_sessions(batch_sessions, marks["sessions"], gap).select(*live_sessions.columns)))
    comparisons.append(("gold.live_daily_active_users", live_dau, dau.select("event_date", "dau")))

    different = False
    for table, live, expected in comparisons:
        only_live, only_expected = differences(live, expected)
        n_live, n_expected = only_live.count(), only_expected.count()
        print(f"{table}: {live.count()} rows live, {expected.count()} expected; "
              f"{n_live} only live, {n_expected} only expected")
        for label, rows, n in (("only live", only_live, n_live), ("only expected", only_expected, n_expected)):
            for row in rows.limit(SAMPLE_ROWS).collect() if n else []:
                print(f"  {label}: {row.asDict()}")
        different = different or bool(n_live or n_expected)
    print("DIFFERENT" if different else "reconciled: no differences")
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
