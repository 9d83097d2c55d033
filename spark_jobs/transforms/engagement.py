"""gold engagement metrics from silver.interactions_enriched (METRICS.md, Engagement)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

MAU_WINDOW_DAYS = 30
COHORT_WEEKS = 26


@dataclass(frozen=True)
class EngagementParams:
    duration_cap_ms: int = 28_800_000
    power_user_fraction: float = 0.01


def _user_days(enriched: DataFrame) -> DataFrame:
    return enriched.select("user_id", "event_date").distinct()


def daily_engagement(enriched: DataFrame) -> DataFrame:
    """(event_date, dau, mau_30d, stickiness, events, total_duration_ms) for every date with events.

    A user counts towards mau_30d of day d when active in [d-29, d]. Each active
    day a covers [a, a+29] cut at the user's next active day, which gives every
    user disjoint intervals; +1/-1 at their ends summed over dates is the MAU.
    That costs one row per user-day instead of thirty."""
    days = _user_days(enriched)
    next_day = F.lead("event_date").over(Window.partitionBy("user_id").orderBy("event_date"))
    covered_until = F.least(F.date_add("event_date", MAU_WINDOW_DAYS - 1), F.date_sub(next_day, 1))
    intervals = days.select("event_date", F.coalesce(covered_until, F.date_add("event_date", MAU_WINDOW_DAYS - 1)).alias("last"))
    deltas = intervals.select(F.col("event_date").alias("d"), F.lit(1).alias("delta")).unionByName(
        intervals.select(F.date_add("last", 1).alias("d"), F.lit(-1).alias("delta"))
    ).groupBy("d").agg(F.sum("delta").alias("delta"))
    # One row per calendar date: a window over all of them is small.
    mau = deltas.select("d", F.sum("delta").over(Window.orderBy("d").rowsBetween(Window.unboundedPreceding, 0)).alias("mau_30d"))
    daily = enriched.groupBy("event_date").agg(
        F.countDistinct("user_id").alias("dau"),
        F.count(F.lit(1)).alias("events"),
        F.sum("duration_ms").alias("total_duration_ms"),
    )
    return daily.join(mau, daily.event_date == mau.d).select(
        "event_date", "dau", "mau_30d", (F.col("dau") / F.col("mau_30d")).cast("double").alias("stickiness"),
        "events", "total_duration_ms",
    )


def monthly_active_users(enriched: DataFrame) -> DataFrame:
    return enriched.groupBy(F.trunc("event_date", "month").alias("month")).agg(F.countDistinct("user_id").alias("mau"))


def power_user_count(users: int, fraction: float) -> int:
    """k = ceil(fraction x N), in exact decimal: 0.01 x 700 is 7, not 7.000000000000001 -> 8."""
    return math.ceil(Decimal(str(fraction)) * users)


def user_totals(enriched: DataFrame, duration_cap_ms: int) -> DataFrame:
    """Per user: capped duration total, events, active days and attributes
    (constant per user in silver, so max() just picks them)."""
    return enriched.groupBy("user_id").agg(
        F.sum(F.least(F.col("duration_ms"), F.lit(duration_cap_ms))).alias("total_duration_ms"),
        F.count(F.lit(1)).alias("events"),
        F.countDistinct("event_date").alias("active_days"),
        *[F.max(c).alias(c) for c in ("country", "device_type", "subscription_type")],
    )


def power_users(enriched: DataFrame, params: EngagementParams = EngagementParams()) -> DataFrame:
    """Users whose capped total is >= the k-th largest capped total (ties included)."""
    totals = user_totals(enriched, params.duration_cap_ms)
    users = totals.count()
    if users == 0:
        return totals
    k = power_user_count(users, params.power_user_fraction)
    # The k-th largest total: the smallest of the top k (a bounded top-k, not a global sort).
    threshold = totals.orderBy(F.desc("total_duration_ms")).limit(k).agg(F.min("total_duration_ms").alias("threshold"))
    return totals.crossJoin(F.broadcast(threshold)).where(F.col("total_duration_ms") >= F.col("threshold")).select(
        "user_id", "total_duration_ms", "events", "active_days", "country", "device_type", "subscription_type"
    )


def cohort_retention(enriched: DataFrame) -> DataFrame:
    """Weekly join cohorts W-25..W (W = week of the latest event) and, for each
    week offset up to W, the share of the cohort active in that week."""
    week = lambda c: F.date_trunc("week", c).cast("date")  # noqa: E731 - ISO week, Monday
    last_week = enriched.agg(week(F.max("event_date")).alias("W"))
    users = (
        enriched.where(F.col("join_date").isNotNull())
        .select("user_id", week(F.col("join_date")).alias("cohort_week")).distinct()
        .crossJoin(F.broadcast(last_week))
        .where(F.col("cohort_week").between(F.date_sub("W", 7 * (COHORT_WEEKS - 1)), F.col("W")))
    )
    sizes = users.groupBy("cohort_week", "W").agg(F.count(F.lit(1)).alias("cohort_size"))
    grid = sizes.select(
        "cohort_week", "cohort_size",
        F.explode(F.sequence(F.lit(0), (F.datediff("W", "cohort_week") / 7).cast("int"))).alias("week_offset"),
    )
    active_weeks = enriched.select("user_id", week(F.col("event_date")).alias("active_week")).distinct()
    active = (
        users.join(active_weeks, "user_id")
        .select("cohort_week", ((F.datediff("active_week", "cohort_week")) / 7).cast("int").alias("week_offset"), "user_id",
                (F.col("active_week") >= F.col("cohort_week")).alias("after_join"))
        .where("after_join")
        .groupBy("cohort_week", "week_offset").agg(F.count(F.lit(1)).alias("active_users"))
    )
    return grid.join(active, ["cohort_week", "week_offset"], "left").select(
        "cohort_week", F.col("week_offset").cast("int"), "cohort_size",
        F.coalesce("active_users", F.lit(0)).cast("long").alias("active_users"),
        (F.coalesce("active_users", F.lit(0)) / F.col("cohort_size")).cast("double").alias("retention_rate"),
    )
