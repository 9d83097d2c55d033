"""performance: silver -> gold.app_version_latency(_overall), device_latency(_association), usage_anomalies.

A day's anomaly baseline is the 14 days before it, so new events on d change
anomalies on d..d+14; per-day latency changes only on d; the rest is over all dates."""
from __future__ import annotations

import sys

from pyspark.sql import functions as F

from iceberg_catalog.tables import TableSpec
from spark_jobs.common import estimated_bytes, plan_for_input_size
from spark_jobs.stage import WHOLE_TABLE, Output, Param, Stage, StageRun, run_dates
from spark_jobs.transforms import performance as T

BASELINE_DAYS = 14
LATENCY_COLUMNS = "events BIGINT, p50_ms DOUBLE, p95_ms DOUBLE, p99_ms DOUBLE"


def compute(run: StageRun) -> None:
    spark, p = run.spark, run.params
    # The per-date tables and the cells each scan silver pruned to their columns and
    # dates: cheaper than caching the shared columns.
    enriched = run.read("silver.interactions_enriched")
    run.record.metrics["codegen"] = plan_for_input_size(spark, estimated_bytes(enriched))
    in_run = run.dates.contains(F.col("event_date"))
    anomaly_days = run.owned("gold.usage_anomalies")
    days_and_baselines = enriched.where(
        run.dates.widened(days_before=BASELINE_DAYS, days_after=BASELINE_DAYS).contains(F.col("event_date")))
    # Per (date, version) event counts and percentiles once, for app_version_latency
    # and the anomalies' version series; materialised because both read them (a row
    # per date and version).
    per_version_day = T.version_days(days_and_baselines, p.latency_actions).localCheckpoint()
    # The three all-dates tables from one scan: page loads counted per version, device
    # and duration, materialised because all three read them (200k rows at 10M events).
    cells = T.latency_cells(enriched, p.latency_actions).localCheckpoint()
    anomalies = T.usage_anomalies(days_and_baselines, per_version_day, p.anomaly_min_events)
    # Five small tables: written side by side (common.side_by_side).
    *_, rows_in = run.side_by_side(
        lambda: run.write("gold.app_version_latency", T.app_version_latency(per_version_day.where(in_run))),
        lambda: run.write("gold.app_version_latency_overall", T.app_version_latency_overall(cells)),
        lambda: run.write("gold.device_latency", T.device_latency(cells)),
        lambda: run.write("gold.device_latency_association", T.device_latency_association(cells)),
        lambda: run.write("gold.usage_anomalies", anomalies.where(anomaly_days)),
        lambda: enriched.where(in_run).count(),
    )
    run.record.rows_in, run.record.rows_out, run.record.rows_rejected = rows_in, rows_in, 0


STAGE = Stage(
    name="performance",
    description=__doc__,
    outputs=(
        Output(TableSpec("gold.app_version_latency",
                         f"event_date DATE NOT NULL, app_version STRING, {LATENCY_COLUMNS}", "event_date"),
               run_dates("event_date")),
        Output(TableSpec("gold.app_version_latency_overall", f"app_version STRING, {LATENCY_COLUMNS}"),
               WHOLE_TABLE),
        Output(TableSpec("gold.device_latency",
                         "device_type STRING, events BIGINT, mean_ms DOUBLE, p50_ms DOUBLE, p95_ms DOUBLE, p99_ms DOUBLE"),
               WHOLE_TABLE),
        Output(TableSpec("gold.device_latency_association",
                         "events BIGINT, eta_squared DOUBLE, kruskal_h DOUBLE, kruskal_p_value DOUBLE"),
               WHOLE_TABLE),
        Output(TableSpec("gold.usage_anomalies",
                         "event_date DATE NOT NULL, dimension STRING, dimension_value STRING, metric STRING, "
                         "value DOUBLE, baseline_mean DOUBLE, baseline_std DOUBLE, z_score DOUBLE, severity STRING",
                         "event_date"),
               run_dates("event_date", days_after=BASELINE_DAYS)),
    ),
    compute=compute,
    after=("enrich",),
    # 5 small tables planned, committed and audited: in its own driver, the optimising
    # compiler's work costs more than it saves (docs/performance.md).
    client_compiler=True,
    params=(
        Param("latency_actions", "list", T.DEFAULT_LATENCY_ACTIONS,
              "action types whose duration_ms is a page load time (comma-separated on the command line)"),
        Param("anomaly_min_events", "int", 20, "a version's p95_ms point needs at least this many page loads that day",
              minimum=1),
    ),
)
main = STAGE.main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
