"""gold sessions from silver.interactions_enriched (docs/tables.md, Sessions)."""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

EVENT_ORDER = ["event_ts", "action_type", "page_id", "duration_ms"]
SESSION_DIMENSIONS = ["device_type", "country"]
DEFAULT_GAP_SECONDS = 1800


def sessions_of(events: DataFrame, gap_seconds: int, time: str, order: list[str], user: str = "user_id",
                keep: tuple[str, ...] = ()) -> DataFrame:
    """One row per session of ``events``: ``user``, ``session_start``,
    ``session_end`` (the times of its first and last event) and ``events`` (its
    rows), and the columns ``keep`` of its last event.

    A user's events are ordered by ``time`` then ``order``; a session starts at
    a user's first event and at every event more than ``gap_seconds`` after the
    previous one (exactly the gap continues it)."""
    by_user = Window.partitionBy(user).orderBy(time, *order)
    gap_before = F.unix_timestamp(time) - F.unix_timestamp(F.lag(time).over(by_user))
    gap_after = F.unix_timestamp(F.lead(time).over(by_user)) - F.unix_timestamp(time)
    marked = events.select(
        user, time, *order, *[c for c in keep if c not in (user, time, *order)],
        F.row_number().over(by_user).alias("position"),
        F.coalesce(gap_before > gap_seconds, F.lit(True)).alias("is_first"),
        F.coalesce(gap_after > gap_seconds, F.lit(True)).alias("is_last"),
    )
    # Each session is read off its last event, the running values of the window
    # carrying its first event's time and position: no aggregation of the events.
    # Times never decrease in this order, so the latest first event so far is
    # the current session's.
    so_far = by_user.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    last_events = marked.select(
        "*",
        F.max(F.when(F.col("is_first"), F.col(time))).over(so_far).alias("session_start"),
        F.max(F.when(F.col("is_first"), F.col("position"))).over(so_far).alias("first_position"),
    ).where(F.col("is_last"))
    return last_events.select(
        user, "session_start", F.col(time).alias("session_end"),
        (F.col("position") - F.col("first_position") + 1).cast("long").alias("events"), *keep,
    )


def sessionize(enriched: DataFrame, gap_seconds: int = DEFAULT_GAP_SECONDS) -> DataFrame:
    """gold.sessions rows of the events of silver.interactions_enriched."""
    return session_rows(sessions_of(enriched, gap_seconds, "event_ts", EVENT_ORDER[1:],
                                    keep=("duration_ms", *SESSION_DIMENSIONS)))


def session_rows(sessions: DataFrame) -> DataFrame:
    """gold.sessions rows of sessions_of's (user_id, session_start, session_end,
    events) with the ``duration_ms`` of each session's last event and the user's
    SESSION_DIMENSIONS (the speed layer's live sessions come in this shape too)."""
    elapsed_ms = (F.unix_micros("session_end") - F.unix_micros("session_start")) / 1000
    # device_type and country are constant per user in silver; the last event's are the session's.
    return sessions.select(
        session_id(F.col("user_id"), F.col("session_start")).alias("session_id"),
        "user_id", "session_start", "session_end",
        F.to_date("session_start").alias("session_date"),
        F.col("events").alias("actions"),
        (elapsed_ms.cast("long") + F.col("duration_ms")).alias("session_duration_ms"),
        (F.col("events") == 1).alias("is_bounce"),
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
    ).select("*", "dim.*").drop("dim")
    keys = ["session_date", "dimension", "dimension_value"]
    # Users are counted from a per-user rollup and joined back: a countDistinct next
    # to the other aggregates makes Spark expand every row, which costs more.
    users = long_form.select(*keys, "user_id").distinct().groupBy(*keys).agg(F.count(F.lit(1)).alias("users"))
    figures = long_form.groupBy(*keys).agg(
        F.count(F.lit(1)).alias("sessions"),
        F.avg("actions").alias("avg_actions"),
        F.avg("session_duration_ms").alias("avg_duration_ms"),
        F.percentile("session_duration_ms", 0.5).alias("p50_duration_ms"),
        (F.sum(F.col("is_bounce").cast("long")) / F.count(F.lit(1))).alias("bounce_rate"),
    )
    return figures.join(users, keys).select(
        "session_date", "dimension", "dimension_value", "sessions", "users", "avg_actions", "avg_duration_ms",
        "p50_duration_ms", "bounce_rate", (F.col("sessions") / F.col("users")).alias("sessions_per_user"),
    )


def first_affected_session_date(sessions: DataFrame, run_start, gap_seconds: int):
    """The earliest session_date a run starting at ``run_start`` can change:
    sessions ending within one gap before the run's first midnight may now
    continue into it."""
    boundary = F.to_timestamp(F.lit(str(run_start))) - F.expr(f"INTERVAL {gap_seconds} SECONDS")
    return sessions.where(F.col("session_end") >= boundary).agg(F.min("session_date").alias("first")).collect()[0]["first"]
