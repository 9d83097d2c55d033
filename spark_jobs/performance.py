"""performance: silver -> gold.app_version_latency(_overall), device_latency(_association), usage_anomalies.

A day's anomaly baseline is the 14 days before it, so new events on d change
anomalies on d..d+14; per-day latency changes only on d; the rest is over all dates."""
from __future__ import annotations

import sys

from pyspark.sql import functions as F

from spark_jobs.common import (base_parser, estimated_bytes, job_run, parse_args, plan_for_input_size,
                               read_table, write_table)
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
        # Per (date, version) percentiles once, for their table and the anomalies' p95 series;
        # materialised because both read them (a few rows per date and version).
        version_latency = T.app_version_latency(days_and_baselines, actions).localCheckpoint()
        write_table(spark, version_latency.where(in_run), "gold.app_version_latency", in_run, args.branch)
        # The three all-dates tables from one scan: page loads counted per version, device
        # and duration, materialised because all three read them (200k rows at 10M events).
        cells = T.latency_cells(enriched, actions).localCheckpoint()
        write_table(spark, T.app_version_latency_overall(cells), "gold.app_version_latency_overall",
                    F.lit(True), args.branch)
        write_table(spark, T.device_latency(cells), "gold.device_latency", F.lit(True), args.branch)
        write_table(spark, T.device_latency_association(cells), "gold.device_latency_association",
                    F.lit(True), args.branch)
        anomalies = T.usage_anomalies(days_and_baselines, version_latency, params.anomaly_min_events)
        write_table(spark, anomalies.where(days.contains(F.col("event_date"))), "gold.usage_anomalies",
                    days.contains(F.col("event_date")), args.branch)
        run.rows_in = enriched.where(in_run).count()
        run.rows_out, run.rows_rejected = run.rows_in, 0
        run.metrics.update({"latency_actions": list(actions), "anomaly_min_events": params.anomaly_min_events})


if __name__ == "__main__":
    main(sys.argv[1:])
