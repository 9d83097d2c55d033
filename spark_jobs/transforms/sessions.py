"""gold sessions from silver.interactions_enriched (METRICS.md, Sessions)."""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

EVENT_ORDER = ["event_ts", "action_type", "page_id", "duration_ms"]
SESSION_DIMENSIONS = ["device_type", "country"]


def sessionize(enriched: DataFrame, gap_seconds: int = 1800) -> DataFrame:
    """gold.sessions rows. A session starts at a user's first event and at every
    event more than ``gap_seconds`` after the previous one (exactly the gap
    continues it)."""
    by_user = Window.partitionBy("user_id").orderBy(*EVENT_ORDER)
    gap = F.unix_timestamp("event_ts") - F.unix_timestamp(F.lag("event_ts").over(by_user))
    starts = F.coalesce(gap > gap_seconds, F.lit(True)).cast("int")
    numbered = enriched.select(
        "user_id", *EVENT_ORDER, "device_type", "country",
        F.sum(starts).over(by_user.rowsBetween(Window.unboundedPreceding, 0)).alias("session_seq"),
    )
    # The struct max is the last event in the contract's order.
    last = F.max(F.struct(*[F.col(c) for c in EVENT_ORDER]))
    sessions = numbered.groupBy("user_id", "session_seq").agg(
        F.min("event_ts").alias("session_start"),
        F.max("event_ts").alias("session_end"),
        F.count(F.lit(1)).alias("actions"),
        last["duration_ms"].alias("last_duration_ms"),
        F.max("device_type").alias("device_type"),
        F.max("country").alias("country"),
    )
    elapsed_ms = (F.unix_micros("session_end") - F.unix_micros("session_start")) / 1000
    return sessions.select(
        session_id(F.col("user_id"), F.col("session_start")).alias("session_id"),
        "user_id", "session_start", "session_end",
        F.to_date("session_start").alias("session_date"),
        "actions",
        (elapsed_ms.cast("long") + F.col("last_duration_ms")).alias("session_duration_ms"),
        (F.col("actions") == 1).alias("is_bounce"),
        "device_type", "country",
    )


def session_id(user_id, session_start):
    """Deterministic: the same user and start give the same id on every run."""
    key = F.concat_ws("|", user_id, F.date_format(session_start, "yyyy-MM-dd HH:mm:ss"))
    return F.substring(F.sha2(key, 256), 1, 32)


def session_daily(sessions: DataFrame) -> DataFrame:
    """Per session_date: all sessions, and by device_type and by country (NULL -> 'unknown')."""
    long_form = sessions.select(
        "session_date", "user_id", "actions", "session_duration_ms", "is_bounce",
        F.explode(F.array(
            F.struct(F.lit("all").alias("dimension"), F.lit("all").alias("dimension_value")),
            *[F.struct(F.lit(d).alias("dimension"), F.coalesce(F.col(d), F.lit("unknown")).alias("dimension_value"))
              for d in SESSION_DIMENSIONS],
        )).alias("dim"),
    )
    return long_form.groupBy("session_date", "dim.dimension", "dim.dimension_value").agg(
        F.count(F.lit(1)).alias("sessions"),
        F.countDistinct("user_id").alias("users"),
        F.avg("actions").alias("avg_actions"),
        F.avg("session_duration_ms").alias("avg_duration_ms"),
        F.percentile("session_duration_ms", 0.5).alias("p50_duration_ms"),
        (F.sum(F.col("is_bounce").cast("long")) / F.count(F.lit(1))).alias("bounce_rate"),
    ).select(
        "session_date", "dimension", "dimension_value", "sessions", "users", "avg_actions", "avg_duration_ms",
        "p50_duration_ms", "bounce_rate", (F.col("sessions") / F.col("users")).alias("sessions_per_user"),
    )


def first_affected_session_date(sessions: DataFrame, run_start, gap_seconds: int):
    """The earliest session_date a run starting at ``run_start`` can change:
    sessions ending within one gap before the run's first midnight may now
    continue into it."""
    boundary = F.to_timestamp(F.lit(str(run_start))) - F.expr(f"INTERVAL {gap_seconds} SECONDS")
    return sessions.where(F.col("session_end") >= boundary).agg(F.min("session_date").alias("first")).collect()[0]["first"]
