"""enrich: bronze -> silver.user_dim and silver.interactions_enriched (skew-aware join)."""
from __future__ import annotations

import sys
from dataclasses import asdict

from pyspark.sql import Observation
from pyspark.sql import functions as F

from iceberg_catalog.tables import create_all
from spark_jobs.common import (base_parser, estimated_bytes, job_run, parse_args, plan_for_input_size, read_table,
                               side_by_side, stage_metrics, write_table)
from spark_jobs.session import build_spark_session
from spark_jobs.transforms import enrich as T


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    defaults = T.SkewJoinParams()
    parser.add_argument("--broadcast-max-bytes", type=int, default=defaults.broadcast_max_bytes,
                        help="broadcast user_dim when Spark estimates it at most this size")
    parser.add_argument("--hot-key-min-share", type=float, default=defaults.hot_key_min_share,
                        help="a user with at least this share of the run's events is a hot key")
    parser.add_argument("--salt-buckets", type=int, default=defaults.salt_buckets)
    parser.add_argument("--join-strategy", choices=["auto", "broadcast", "shuffle", "salted"], default="auto")
    args, dates = parse_args(parser, argv)
    params = T.SkewJoinParams(args.broadcast_max_bytes, args.hot_key_min_share, args.salt_buckets,
                              force_strategy=args.join_strategy)
    # Our plan decides broadcasting; Spark's size guess must not override it.
    spark = build_spark_session(f"enrich {args.run_id}", {"spark.sql.autoBroadcastJoinThreshold": "-1"})
    branch_suffix = f".branch_{args.branch}" if args.branch else ""

    with job_run(spark, "enrich", args.run_id, dates, args.branch) as run:
        bronze = read_table(spark, "bronze.interactions").where(dates.contains(F.col("event_date")))
        run.metrics["codegen"] = plan_for_input_size(spark, estimated_bytes(bronze))
        # Observations (Spark's accumulator-backed metrics) count rows inside the
        # actions that run anyway, without another pass over the data.
        read_count = Observation("enrich_read")
        interactions = bronze.observe(read_count, F.count(F.lit(1)).alias("rows"))
        # The dimension's small write beside the events' hot-key count (common.side_by_side).
        create_all(spark, ["silver.user_dim"])
        _, hot = side_by_side(
            spark,
            lambda: write_table(spark, T.user_dim(read_table(spark, "bronze.user_metadata")), "silver.user_dim",
                                F.lit(True), args.branch),
            lambda: T.hot_keys(interactions, params.hot_key_min_share, params.max_hot_keys).collect(),
        )
        dim = spark.table(f"iceberg.silver.user_dim{branch_suffix}")
        dim_bytes = estimated_bytes(dim)
        plan = T.choose_join_plan(dim_bytes, [r["user_id"] for r in hot], params)
        print(f"[enrich] join strategy {plan.strategy}: {plan.reason}")

        spark.sparkContext.setJobGroup(f"enrich-join-{args.run_id}", "skew-aware join", True)
        write_count = Observation("enrich_write")
        enriched = T.enrich(interactions, dim, plan, params.salt_buckets).observe(
            write_count, F.count(F.lit(1)).alias("rows"), F.count("join_date").alias("matched"))
        # A broadcast join keeps bronze's layout: each scan task reads whole files, each of one date.
        write_table(spark, enriched, "silver.interactions_enriched", dates.contains(F.col("event_date")), args.branch,
                    clustered_by_partition=plan.strategy == "broadcast")
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
        spark.sparkContext.setLocalProperty("spark.job.description", None)

        rows_in, rows_out = read_count.get["rows"], write_count.get["rows"]
        run.rows_in, run.rows_out, run.rows_rejected = rows_in, rows_out, 0
        run.metrics.update({
            "join_strategy": plan.strategy,
            "join_reason": plan.reason,
            "hot_keys": [{"user_id": r["user_id"], "events": r["events"], "share": round(r["share"], 6)} for r in hot],
            "user_dim_estimated_bytes": dim_bytes,
            "skew_params": asdict(params),
            "matched_events": write_count.get["matched"],
            "join_stage": stage_metrics(spark, f"enrich-join-{args.run_id}"),
        })
        if rows_out != rows_in:
            raise RuntimeError(f"enrich {args.run_id}: wrote {rows_out} enriched rows for {dates}, "
                               f"bronze.interactions has {rows_in}")


if __name__ == "__main__":
    main(sys.argv[1:])
