"""engagement: silver -> gold.daily_engagement, monthly_active_users, power_users, cohort_retention.

Date-scoped tables are rewritten for the dates a run can change: a day's
mau_30d looks 29 days back, so new events on d change days d..d+29. Power users
and cohorts rank the whole history and are rewritten whole."""
from __future__ import annotations

import sys

from pyspark.sql import functions as F

from iceberg_catalog.tables import TableSpec
from spark_jobs.common import estimated_bytes, plan_for_input_size
from spark_jobs.stage import WHOLE_TABLE, Output, Param, Stage, StageRun, run_dates, run_months
from spark_jobs.transforms import engagement as T


def compute(run: StageRun) -> None:
    spark, p = run.spark, run.params
    # One scan and aggregation of the events; every table reads this rollup of them.
    enriched = run.read("silver.interactions_enriched")
    run.record.metrics["codegen"] = plan_for_input_size(spark, estimated_bytes(enriched))
    user_days = T.user_days(enriched, p.duration_cap_ms).localCheckpoint()
    # A day's mau_30d reads the 29 days before it.
    window_days = run.dates.widened(days_before=T.MAU_WINDOW_DAYS - 1, days_after=T.MAU_WINDOW_DAYS - 1)
    daily = T.daily_engagement(user_days.where(window_days.contains(F.col("event_date"))))
    # The month filter reaches below the aggregation: only the run's months are counted.
    monthly = T.monthly_active_users(user_days).where(run.owned("gold.monthly_active_users"))
    # Four small tables from one rollup: written side by side (common.side_by_side).
    *_, rows_in = run.side_by_side(
        lambda: run.write("gold.daily_engagement", daily.where(run.owned("gold.daily_engagement"))),
        lambda: run.write("gold.monthly_active_users", monthly),
        lambda: run.write("gold.power_users", T.power_users(user_days, p.power_user_fraction)),
        lambda: run.write("gold.cohort_retention", T.cohort_retention(user_days, run.read("silver.user_dim"))),
        lambda: user_days.where(run.dates.contains(F.col("event_date"))).agg(F.sum("events")).first()[0] or 0,
    )
    run.record.rows_in = run.record.rows_out = rows_in
    run.record.rows_rejected = 0


STAGE = Stage(
    name="engagement",
    description=__doc__,
    outputs=(
        Output(TableSpec("gold.daily_engagement",
                         "event_date DATE NOT NULL, dau BIGINT, mau_30d BIGINT, stickiness DOUBLE, events BIGINT, "
                         "total_duration_ms BIGINT", "event_date"),
               run_dates("event_date", days_after=T.MAU_WINDOW_DAYS - 1)),
        Output(TableSpec("gold.monthly_active_users", "month DATE NOT NULL, mau BIGINT", "month"),
               run_months("month")),
        Output(TableSpec("gold.power_users",
                         "user_id STRING NOT NULL, total_duration_ms BIGINT, events BIGINT, active_days BIGINT, "
                         "country STRING, device_type STRING, subscription_type STRING"),
               WHOLE_TABLE),
        Output(TableSpec("gold.cohort_retention",
                         "cohort_week DATE NOT NULL, week_offset INT NOT NULL, cohort_size BIGINT, "
                         "active_users BIGINT, retention_rate DOUBLE"),
               WHOLE_TABLE),
    ),
    compute=compute,
    after=("enrich",),
    # 4 small tables planned, committed and audited: in its own driver, the optimising
    # compiler's work costs more than it saves (docs/performance.md).
    client_compiler=True,
    params=(
        Param("duration_cap_ms", "int", T.DEFAULT_DURATION_CAP_MS, "each event's duration_ms is capped at this before a user's "
              "total is summed (power users)", minimum=0),
        Param("power_user_fraction", "float", T.DEFAULT_POWER_USER_FRACTION, "power users are the top ceil(fraction x users) by capped "
              "total, ties included", exclusive_minimum=0, maximum=1),
    ),
)
main = STAGE.main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
