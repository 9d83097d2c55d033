"""performance: silver -> gold.app_version_latency(_overall), device_latency(_association), usage_anomalies.

A day's anomaly baseline is the 14 days before it, so new events on d change
anomalies on d..d+14; per-day latency changes only on d; the rest is over all dates."""
from __future__ import annotations

import sys

from pyspark.sql import functions as F

from iceberg_catalog.tables import STAGE_OUTPUTS, create_all
from spark_jobs.common import (base_parser, estimated_bytes, job_run, parse_args, plan_for_input_size,
                               read_table, side_by_side, write_table)
from spark_jobs.session import build_spark_session
from spark_jobs.transforms import performance as T

BASELINE_DAYS = 14


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    defaults = T.PerformanceParams()
    parser.add_argument("--latency-actions", default=",".join(defaults.latency_actions),
                        help="comma-separated action types whose duration_ms is a page load time")
    parser.add_argument("--anomaly-min-events", type=int, default=defaults.anomaly_min_events)
    args, dates = parse_args(parser, argv)
    try:
        params = T.PerformanceParams(tuple(a.strip() for a in args.latency_actions.split(",") if a.strip()),
                                     args.anomaly_min_events)
    except ValueError as exc:
        parser.error(str(exc))
    actions = params.latency_actions
    spark = build_spark_session(f"performance {args.run_id}")

    with job_run(spark, "performance", args.run_id, dates, args.branch) as run:
        # The per-date tables and the cells each scan silver pruned to their columns and
        # dates: cheaper than caching the shared columns (bench/results/before-after-engagement-performance.md).
        enriched = read_table(spark, "silver.interactions_enriched")
        run.metrics["codegen"] = plan_for_input_size(spark, estimated_bytes(enriched))
        in_run = dates.contains(F.col("event_date"))
        days = dates.widened(days_after=BASELINE_DAYS)
        days_and_baselines = enriched.where(days.widened(days_before=BASELINE_DAYS).contains(F.col("event_date")))
        # Per (date, version) event counts and percentiles once, for app_version_latency
        # and the anomalies' version series; materialised because both read them (a row
        # per date and version).
        per_version_day = T.version_days(days_and_baselines, actions).localCheckpoint()
        # The three all-dates tables from one scan: page loads counted per version, device
        # and duration, materialised because all three read them (200k rows at 10M events).
        cells = T.latency_cells(enriched, actions).localCheckpoint()
        anomalies = T.usage_anomalies(days_and_baselines, per_version_day, params.anomaly_min_events)
        # Five small tables: written side by side (common.side_by_side).
        create_all(spark, STAGE_OUTPUTS["performance"])
        *_, rows_in = side_by_side(
            spark,
            lambda: write_table(spark, T.app_version_latency(per_version_day.where(in_run)),
                                "gold.app_version_latency", in_run, args.branch),
            lambda: write_table(spark, T.app_version_latency_overall(cells), "gold.app_version_latency_overall",
                                F.lit(True), args.branch),
            lambda: write_table(spark, T.device_latency(cells), "gold.device_latency", F.lit(True), args.branch),
            lambda: write_table(spark, T.device_latency_association(cells), "gold.device_latency_association",
                                F.lit(True), args.branch),
            lambda: write_table(spark, anomalies.where(days.contains(F.col("event_date"))), "gold.usage_anomalies",
                                days.contains(F.col("event_date")), args.branch),
            lambda: enriched.where(in_run).count(),
        )
        run.rows_in, run.rows_out, run.rows_rejected = rows_in, rows_in, 0
        run.metrics.update({"latency_actions": list(actions), "anomaly_min_events": params.anomaly_min_events})


if __name__ == "__main__":
    main(sys.argv[1:])
