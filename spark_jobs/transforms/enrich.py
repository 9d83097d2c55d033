"""silver: the user dimension and the skew-aware join of events to it."""
from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

USER_ATTRIBUTES = ["join_date", "country", "device_type", "subscription_type"]


def user_dim(metadata: DataFrame) -> DataFrame:
    """One row per user_id: the earliest join_date, ties to the smallest
    (country, device_type, subscription_type) in byte order. A min over a
    struct compares field by field, so one aggregate does it. Spark sorts for it
    (a struct buffer is not fixed-width), which over the metadata's rows is cheap."""
    best = F.min(F.struct(*[F.col(c) for c in USER_ATTRIBUTES])).alias("best")
    return metadata.groupBy("user_id").agg(best).select("user_id", *[F.col(f"best.{c}").alias(c) for c in USER_ATTRIBUTES])


@dataclass(frozen=True)
class SkewJoinParams:
    broadcast_max_bytes: int = 64 * 1024 * 1024
    hot_key_min_share: float = 0.01  # a user with at least this share of the events is hot
    salt_buckets: int = 16
    max_hot_keys: int = 1000
    force_strategy: str = "auto"  # auto | broadcast | shuffle | salted


@dataclass(frozen=True)
class JoinPlan:
    strategy: str  # broadcast | shuffle | salted
    reason: str
    hot_keys: list[str] = field(default_factory=list)


def hot_keys(interactions: DataFrame, min_share: float, limit: int) -> DataFrame:
    """(user_id, events, share) of the users holding at least ``min_share`` of
    the events, most active first. Partial aggregation keeps the shuffle at one
    row per user per task; the total sums the per-user counts, so Spark reuses
    their shuffle and scans the events once."""
    per_user = interactions.groupBy("user_id").agg(F.count(F.lit(1)).alias("events"))
    total = per_user.agg(F.sum("events").alias("total"))
    return (
        per_user.crossJoin(F.broadcast(total))
        .select("user_id", "events", (F.col("events") / F.col("total")).alias("share"))
        .where(F.col("share") >= min_share)
        .orderBy(F.desc("events"), "user_id")
        .limit(limit)
    )


def choose_join_plan(dim_bytes: int, hot: list[str], params: SkewJoinParams) -> JoinPlan:
    if params.force_strategy != "auto":
        return JoinPlan(params.force_strategy, f"forced by --join-strategy {params.force_strategy}", hot)
    if dim_bytes <= params.broadcast_max_bytes:
        return JoinPlan("broadcast", f"user_dim estimated {dim_bytes} B <= broadcast limit {params.broadcast_max_bytes} B", hot)
    if hot:
        return JoinPlan("salted", f"user_dim estimated {dim_bytes} B > broadcast limit; {len(hot)} hot keys "
                                  f"(>= {params.hot_key_min_share:.2%} of events each) salted over {params.salt_buckets} buckets", hot)
    return JoinPlan("shuffle", f"user_dim estimated {dim_bytes} B > broadcast limit; no hot keys", hot)


def _event_salt(buckets: int):
    # Deterministic, so a retried task puts each event in the same bucket.
    return F.pmod(F.xxhash64("user_id", "event_ts", "action_type", "page_id", "duration_ms", "app_version"), F.lit(buckets))


def salted_join(interactions: DataFrame, dim: DataFrame, hot: list[str], buckets: int) -> DataFrame:
    """LEFT join on (user_id, salt): each hot user's events are spread over
    ``buckets`` salts and its dimension row is copied once per salt; every other
    user has salt 0 on both sides. One shuffle of the events, in which each hot
    user's slices share the partitions with everyone else's rows."""
    is_hot = F.col("user_id").isin(hot)
    events = interactions.withColumn("salt", F.when(is_hot, _event_salt(buckets)).otherwise(F.lit(0)).cast("int"))
    salts = F.when(is_hot, F.sequence(F.lit(0), F.lit(buckets - 1))).otherwise(F.array(F.lit(0)))
    salted_dim = dim.withColumn("salt", F.explode(salts))
    return events.join(salted_dim, ["user_id", "salt"], "left").drop("salt")


def enrich(interactions: DataFrame, dim: DataFrame, plan: JoinPlan, salt_buckets: int) -> DataFrame:
    """Every interaction once, with its user's attributes (NULL when unknown)."""
    events = interactions.drop("source_file")
    if plan.strategy == "broadcast":
        return events.join(F.broadcast(dim), "user_id", "left")
    if plan.strategy == "salted" and plan.hot_keys:
        return salted_join(events, dim, plan.hot_keys, salt_buckets)
    return events.join(dim, "user_id", "left")
