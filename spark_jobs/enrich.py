"""enrich: bronze -> silver.user_dim and silver.interactions_enriched (skew-aware join)."""
from __future__ import annotations

import sys
from dataclasses import asdict

from pyspark.sql import Observation
from pyspark.sql import functions as F

from iceberg_catalog.tables import TableSpec
from spark_jobs.common import estimated_bytes, plan_for_input_size, stage_metrics
from spark_jobs.ingest import INTERACTION_COLUMNS, USER_COLUMNS
from spark_jobs.stage import WHOLE_TABLE, Output, Param, Stage, StageRun, run_dates
from spark_jobs.transforms import enrich as T


def compute(run: StageRun) -> None:
    spark, p = run.spark, run.params
    params = T.SkewJoinParams(p.broadcast_max_bytes, p.hot_key_min_share, p.salt_buckets, force_strategy=p.join_strategy)
    bronze = run.read("bronze.interactions").where(run.dates.contains(F.col("event_date")))
    run.record.metrics["codegen"] = plan_for_input_size(spark, estimated_bytes(bronze))
    # Observations (Spark's accumulator-backed metrics) count rows inside the
    # actions that run anyway, without another pass over the data.
    read_count = Observation("enrich_read")
    interactions = bronze.observe(read_count, F.count(F.lit(1)).alias("rows"))
    # The dimension's small write beside the events' hot-key count (common.side_by_side).
    _, hot = run.side_by_side(
        lambda: run.write("silver.user_dim", T.user_dim(run.read("bronze.user_metadata"))),
        lambda: T.hot_keys(interactions, params.hot_key_min_share, params.max_hot_keys).collect(),
    )
    dim = run.read_output("silver.user_dim")
    dim_bytes = estimated_bytes(dim)
    plan = T.choose_join_plan(dim_bytes, [r["user_id"] for r in hot], params)
    print(f"[enrich] join strategy {plan.strategy}: {plan.reason}")

    job_group = f"enrich-join-{run.run_id}"
    spark.sparkContext.setJobGroup(job_group, "skew-aware join", True)
    write_count = Observation("enrich_write")
    enriched = T.enrich(interactions, dim, plan, params.salt_buckets).observe(
        write_count, F.count(F.lit(1)).alias("rows"), F.count("join_date").alias("matched"))
    # A broadcast join keeps bronze's layout: each scan task reads whole files, each of one date.
    run.write("silver.interactions_enriched", enriched, clustered_by_partition=plan.strategy == "broadcast")
    spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    spark.sparkContext.setLocalProperty("spark.job.description", None)

    rows_in, rows_out = read_count.get["rows"], write_count.get["rows"]
    run.record.rows_in, run.record.rows_out, run.record.rows_rejected = rows_in, rows_out, 0
    run.record.metrics.update({
        "join_strategy": plan.strategy,
        "join_reason": plan.reason,
        "hot_keys": [{"user_id": r["user_id"], "events": r["events"], "share": round(r["share"], 6)} for r in hot],
        "user_dim_estimated_bytes": dim_bytes,
        "skew_params": asdict(params),
        "matched_events": write_count.get["matched"],
        "join_stage": stage_metrics(spark, job_group),
    })


STAGE = Stage(
    name="enrich",
    description=__doc__,
    outputs=(
        Output(TableSpec("silver.user_dim", f"user_id STRING NOT NULL, {USER_COLUMNS}", "",
                         "One row per user_id: earliest join_date, ties to the smallest attributes"),
               WHOLE_TABLE),
        Output(TableSpec("silver.interactions_enriched", f"{INTERACTION_COLUMNS}, {USER_COLUMNS}", "event_date",
                         "Every bronze interaction once, left joined to silver.user_dim"),
               run_dates("event_date")),
    ),
    compute=compute,
    after=("ingest",),
    params=(
        Param("broadcast_max_bytes", "int", 64 * 1024 * 1024,
              "broadcast user_dim when Spark estimates it at most this size", minimum=0),
        Param("hot_key_min_share", "float", 0.01, "a user with at least this share of the run's events is a hot key",
              exclusive_minimum=0, maximum=1),
        Param("salt_buckets", "int", 16, "buckets each hot key's events are spread over (salted join)",
              minimum=1, maximum=4096),
        Param("join_strategy", "str", "auto", "force a join strategy instead of choosing by size and skew",
              choices=("auto", "broadcast", "shuffle", "salted")),
        Param("min_metadata_match_share", "float", 0.05,
              "the gate warns when fewer events than this share have user metadata", minimum=0, maximum=1),
        Param("min_metadata_match_share_error", "float", 1e-9,
              "the gate blocks a run where fewer events than this share have user metadata (the default: "
              "at least one)", minimum=0, maximum=1),
    ),
    # The bronze rows the run read: its enriched rows must be exactly as many.
    suite_parameters=lambda run: {"bronze_interactions_rows": run.record.rows_in},
    # Our join plan decides broadcasting; Spark's size guess must not override it.
    session_conf={"spark.sql.autoBroadcastJoinThreshold": "-1"},
)
main = STAGE.main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
