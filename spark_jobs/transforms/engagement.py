"""gold engagement metrics from silver.interactions_enriched (docs/tables.md, Engagement)."""
from __future__ import annotations

import math
from decimal import Decimal

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from spark_jobs.transforms.enrich import USER_ATTRIBUTES

MAU_WINDOW_DAYS = 30
COHORT_WEEKS = 26


DEFAULT_DURATION_CAP_MS = 28_800_000  # 8 h
DEFAULT_POWER_USER_FRACTION = 0.01


def user_days(enriched: DataFrame, duration_cap_ms: int = DEFAULT_DURATION_CAP_MS) -> DataFrame:
    """One row per user and active date: its events, duration total, duration total
    with each event capped at ``duration_cap_ms``, and the user's attributes.

    Every engagement table is computed from this rollup, so the events are read and
    aggregated once per run (a user-day is about 16 events in the benchmark data).
    The attributes are constant per user in silver (one user_dim row each), so
    grouping by them adds no groups; with only fixed-width aggregates this stays a
    hash aggregate (a max over strings would make Spark sort every event)."""
    return enriched.groupBy("user_id", "event_date", *USER_ATTRIBUTES).agg(
        F.count(F.lit(1)).alias("events"),
        F.sum("duration_ms").alias("duration_ms"),
        F.sum(F.least(F.col("duration_ms"), F.lit(duration_cap_ms))).alias("capped_duration_ms"),
    )


def daily_engagement(user_days: DataFrame) -> DataFrame:
    """(event_date, dau, mau_30d, stickiness, events, total_duration_ms) for every date with events.

    A user counts towards mau_30d of day d when active in [d-29, d]. Each active
    day a covers [a, a+29] cut at the user's next active day, which gives every
    user disjoint intervals; +1/-1 at their ends summed over dates is the MAU.
    That costs one row per user-day instead of thirty.

    Each user-day row carries both its day's figures and its +1/-1, with no
    countDistinct (whose Expand doubles every row)."""
    next_day = F.lead("event_date").over(Window.partitionBy("user_id").orderBy("event_date"))
    last = F.coalesce(F.least(F.date_add("event_date", MAU_WINDOW_DAYS - 1), F.date_sub(next_day, 1)),
                      F.date_add("event_date", MAU_WINDOW_DAYS - 1))
    contributions = F.array(
        F.struct(F.col("event_date").alias("d"), F.lit(1).alias("delta"), F.lit(1).alias("dau"),
                 F.col("events"), F.col("duration_ms")),
        F.struct(F.date_add("last", 1).alias("d"), F.lit(-1).alias("delta"), F.lit(0).alias("dau"),
                 F.lit(0).cast("long").alias("events"), F.lit(0).cast("long").alias("duration_ms")),
    )
    per_date = user_days.select("*", last.alias("last")).select(F.explode(contributions).alias("c")).groupBy("c.d").agg(
        F.sum("c.delta").alias("delta"), F.sum("c.dau").alias("dau"),
        F.sum("c.events").alias("events"), F.sum("c.duration_ms").alias("total_duration_ms"),
    )
    # One row per calendar date: a window over all of them is small.
    mau = F.sum("delta").over(Window.orderBy("d").rowsBetween(Window.unboundedPreceding, 0))
    return per_date.select("*", mau.alias("mau_30d")).where(F.col("dau") > 0).select(
        F.col("d").alias("event_date"), "dau", "mau_30d", (F.col("dau") / F.col("mau_30d")).cast("double").alias("stickiness"),
        "events", "total_duration_ms",
    )


def monthly_active_users(user_days: DataFrame) -> DataFrame:
    return user_days.groupBy(F.trunc("event_date", "month").alias("month")).agg(F.countDistinct("user_id").alias("mau"))


def power_user_count(users: int, fraction: float) -> int:
    """k = ceil(fraction x N), in exact decimal: 0.01 x 700 is 7, not 7.000000000000001 -> 8."""
    return math.ceil(Decimal(str(fraction)) * users)


def user_totals(user_days: DataFrame) -> DataFrame:
    """Per user: capped duration total, events, active days and attributes."""
    return user_days.groupBy("user_id", "country", "device_type", "subscription_type").agg(
        F.sum("capped_duration_ms").alias("total_duration_ms"),
        F.sum("events").alias("events"),
        F.count(F.lit(1)).alias("active_days"),
    )


def power_users(user_days: DataFrame, power_user_fraction: float = DEFAULT_POWER_USER_FRACTION) -> DataFrame:
    """Users whose capped total is >= the k-th largest capped total (ties included).
    ``user_days`` must be capped at the run's duration cap (see user_days)."""
    # Materialised once (one row per user) for the count, the threshold and the result.
    totals = user_totals(user_days).localCheckpoint()
    users = totals.count()
    if users == 0:
        return totals
    k = power_user_count(users, power_user_fraction)
    # The k-th largest total: the smallest of the top k (a bounded top-k, not a global sort).
    threshold = totals.orderBy(F.desc("total_duration_ms")).limit(k).agg(F.min("total_duration_ms").alias("threshold"))
    return totals.crossJoin(F.broadcast(threshold)).where(F.col("total_duration_ms") >= F.col("threshold")).select(
        "user_id", "total_duration_ms", "events", "active_days", "country", "device_type", "subscription_type"
    )


def cohort_retention(user_days: DataFrame, user_dim: DataFrame) -> DataFrame:
    """Weekly join cohorts W-25..W (W = week of the latest event in ``user_days``)
    and, for each week offset up to W, the share of the cohort active in that week.

    A cohort is every ``user_dim`` user (silver.user_dim, one row per user) whose
    join_date falls in the week, with or without events: ``cohort_size`` counts
    them all. Users without a user_dim row have no cohort; weeks before a user's
    join week are not counted. No events, no W: an empty result.

    Only the last 26 weeks can be a cohort's active weeks, so each user's activity
    is one int, bit j set when active in week W - 7j (a hash aggregate of
    ``user_days`` by user). Each member row joins its user's bits one to one, and
    one aggregate per cohort counts members and, for every j, the members with
    bit j; offset k of cohort c weeks before W reads j = c - k. That is one scan
    of ``user_dim``, one join by user_id and no row per user-week."""
    week = lambda c: F.date_trunc("week", c).cast("date")  # noqa: E731 - ISO week, Monday
    last_week = F.broadcast(user_days.agg(week(F.max("event_date")).alias("W")))
    weeks_before_w = lambda c: (F.datediff(F.col("W"), week(c)) / 7).cast("int")  # noqa: E731 - both Mondays
    activity = (
        user_days.crossJoin(last_week)
        .select("user_id", weeks_before_w(F.col("event_date")).alias("j"))
        .where(F.col("j") < COHORT_WEEKS)
        .groupBy("user_id").agg(F.bit_or(F.expr("shiftleft(1, j)")).alias("active_bits"))
    )
    members = (
        user_dim.crossJoin(last_week)
        .select("user_id", week(F.col("join_date")).alias("cohort_week"), weeks_before_w(F.col("join_date")).alias("c"))
        .where(F.col("c").between(0, COHORT_WEEKS - 1))   # a null join_date has no cohort
    )
    active_in = lambda j: F.count(F.when(F.col("active_bits").bitwiseAND(1 << j) != 0, 1))  # noqa: E731
    cohorts = members.join(activity, "user_id", "left").groupBy("cohort_week", "c").agg(
        F.count(F.lit(1)).alias("cohort_size"), F.array(*[active_in(j) for j in range(COHORT_WEEKS)]).alias("active"),
    )
    active_users = F.element_at("active", F.col("c") - F.col("week_offset") + 1)
    return cohorts.select("*", F.explode(F.sequence(F.lit(0), F.col("c"))).alias("week_offset")).select(
        "cohort_week", F.col("week_offset").cast("int"), F.col("cohort_size").cast("long"),
        active_users.cast("long").alias("active_users"),
        (active_users / F.col("cohort_size")).cast("double").alias("retention_rate"),
    )
