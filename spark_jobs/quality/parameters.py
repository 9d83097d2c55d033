"""Run-time values the suites refer to as {"$PARAMETER": name}.

Cross-table checks compare the branch under audit with tables upstream gates
already published to main, so each value is an aggregate over main (a count,
never rows brought to the driver). Only the parameters a stage's suites use
are computed.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.quality.publishing import identifier


class ParameterError(LookupError):
    """A suite parameter cannot be computed (its source is missing)."""


@dataclass(frozen=True)
class Thresholds:
    max_rejected_share: float = 0.05
    min_metadata_match_share: float = 0.05  # warning
    # error: a broken join matches nobody; 1e-9 means "at least one event has metadata"
    min_metadata_match_share_error: float = 1e-9

    @classmethod
    def from_env(cls) -> "Thresholds":
        def env(name: str, default: float) -> float:
            return float(os.environ.get(f"QUALITY_{name.upper()}", default))

        return cls(**{name: env(name, getattr(cls, name)) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class RunScope:
    run_id: str
    start_date: object = None  # datetime.date or None (= every date)
    end_date: object = None

    @property
    def everything(self) -> bool:
        return self.start_date is None


def scoped(df: DataFrame, date_column: str | None, scope: RunScope) -> DataFrame:
    """Rows of the run's dates (inclusive), or every row when the run has no dates."""
    if not date_column or scope.everything:
        return df
    return df.where(F.col(date_column).between(F.lit(scope.start_date), F.lit(scope.end_date)))


def max_rejected_rows(rows_read: int, share: float) -> int:
    return int(math.floor(rows_read * share + 1e-9))


def ingest_rows_read(spark: SparkSession, run_id: str) -> int | None:
    """Landing rows the run's latest successful ingest read, from ops.job_runs:
    rows_in (interaction rows of the run's dates, accepted + rejected) plus
    metrics_json.metadata_rows_read, because bronze.rejected_rows holds the
    rejects of both files."""
    if not spark.catalog.tableExists(identifier("ops.job_runs")):
        return None
    rows = (spark.table(identifier("ops.job_runs"))
            .where((F.col("run_id") == run_id) & (F.col("job") == "ingest") & (F.col("status") == "succeeded"))
            .orderBy(F.col("finished_at").desc())
            .select("rows_in", F.get_json_object("metrics_json", "$.metadata_rows_read").cast("long").alias("meta"))
            .limit(1).collect())
    if not rows or rows[0]["rows_in"] is None:
        return None
    return rows[0]["rows_in"] + (rows[0]["meta"] or 0)


@dataclass
class ParameterContext:
    spark: SparkSession
    scope: RunScope
    thresholds: Thresholds


def _max_rejected_rows(ctx: ParameterContext) -> int:
    rows_read = ingest_rows_read(ctx.spark, ctx.scope.run_id)
    if rows_read is None:
        raise ParameterError(f"ops.job_runs has no successful ingest row for run {ctx.scope.run_id!r}: "
                          "cannot tell how many rows the run read")
    return max_rejected_rows(rows_read, ctx.thresholds.max_rejected_share)


def _bronze_interactions_rows(ctx: ParameterContext) -> int:
    return scoped(ctx.spark.table(identifier("bronze.interactions")), "event_date", ctx.scope).count()


def _enriched_events(ctx: ParameterContext) -> int:
    return ctx.spark.table(identifier("silver.interactions_enriched")).count()


PARAMETERS: dict[str, Callable[[ParameterContext], object]] = {
    "max_rejected_rows": _max_rejected_rows,
    "bronze_interactions_rows": _bronze_interactions_rows,
    "enriched_events": _enriched_events,
    "min_metadata_match_share": lambda ctx: ctx.thresholds.min_metadata_match_share,
    "min_metadata_match_share_error": lambda ctx: ctx.thresholds.min_metadata_match_share_error,
}


def compute_parameters(names: set[str], ctx: ParameterContext) -> dict[str, object]:
    unknown = names - set(PARAMETERS)
    if unknown:
        raise KeyError(f"suites use unknown parameters {sorted(unknown)}; known: {sorted(PARAMETERS)}")
    return {name: PARAMETERS[name](ctx) for name in sorted(names)}
