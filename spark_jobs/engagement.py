"""engagement: silver -> gold.daily_engagement, monthly_active_users, power_users, cohort_retention.

Date-scoped tables are rewritten for the dates a run can change: a day's
mau_30d looks 29 days back, so new events on d change days d..d+29. Power users
and cohorts rank the whole history and are rewritten whole."""
from __future__ import annotations

import sys

from pyspark.sql import functions as F

from iceberg_catalog.tables import STAGE_OUTPUTS, create_all
from spark_jobs.common import (base_parser, estimated_bytes, job_run, parse_args, plan_for_input_size,
                               read_table, side_by_side, write_table)
from spark_jobs.session import build_spark_session
from spark_jobs.transforms import engagement as T


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    defaults = T.EngagementParams()
    parser.add_argument("--duration-cap-ms", type=int, default=defaults.duration_cap_ms)
    parser.add_argument("--power-user-fraction", type=float, default=defaults.power_user_fraction)
    args, dates = parse_args(parser, argv)
    params = T.EngagementParams(args.duration_cap_ms, args.power_user_fraction)
    spark = build_spark_session(f"engagement {args.run_id}")

    with job_run(spark, "engagement", args.run_id, dates, args.branch) as run:
        # One scan and aggregation of the events; every table reads this rollup of them.
        enriched = read_table(spark, "silver.interactions_enriched")
        run.metrics["codegen"] = plan_for_input_size(spark, estimated_bytes(enriched))
        user_days = T.user_days(enriched, params.duration_cap_ms).localCheckpoint()
        days = dates.widened(days_after=T.MAU_WINDOW_DAYS - 1)
        daily = T.daily_engagement(user_days.where(days.widened(days_before=T.MAU_WINDOW_DAYS - 1).contains(F.col("event_date"))))
        months = dates if dates.everything else type(dates)(dates.start.replace(day=1), _month_end(dates.end))
        monthly = T.monthly_active_users(user_days.where(months.contains(F.col("event_date"))))
        # Four small tables from one rollup: written side by side (common.side_by_side).
        create_all(spark, STAGE_OUTPUTS["engagement"])
        *_, rows_in = side_by_side(
            spark,
            lambda: write_table(spark, daily.where(days.contains(F.col("event_date"))), "gold.daily_engagement",
                                days.contains(F.col("event_date")), args.branch),
            lambda: write_table(spark, monthly, "gold.monthly_active_users", months.contains(F.col("month")),
                                args.branch),
            lambda: write_table(spark, T.power_users(user_days, params.power_user_fraction), "gold.power_users",
                                F.lit(True), args.branch),
            lambda: write_table(spark, T.cohort_retention(user_days), "gold.cohort_retention", F.lit(True),
                                args.branch),
            lambda: user_days.where(dates.contains(F.col("event_date"))).agg(F.sum("events")).first()[0] or 0,
        )
        run.rows_in = run.rows_out = rows_in
        run.rows_rejected = 0
        run.metrics["params"] = vars(params)


def _month_end(d):
    import datetime as dt

    first_of_next = (d.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return first_of_next - dt.timedelta(days=1)


if __name__ == "__main__":
    main(sys.argv[1:])
