"""sessions: silver -> gold.sessions and gold.session_daily.

A session can run across midnight and, for a very active user, across days, so
sessions are cut from the whole history; a run then rewrites every session date
from the first one its dates can change (see first_affected_session_date)."""
from __future__ import annotations

import sys

from pyspark.sql import functions as F

from iceberg_catalog.tables import STAGE_OUTPUTS, create_all
from spark_jobs.common import (base_parser, estimated_bytes, job_run, parse_args, plan_for_input_size,
                               read_table, side_by_side, write_table)
from spark_jobs.session import build_spark_session
from spark_jobs.transforms import sessions as T


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--session-gap-seconds", type=int, default=1800)
    args, dates = parse_args(parser, argv)
    spark = build_spark_session(f"sessions {args.run_id}")

    with job_run(spark, "sessions", args.run_id, dates, args.branch) as run:
        enriched = read_table(spark, "silver.interactions_enriched")
        run.metrics["codegen"] = plan_for_input_size(spark, estimated_bytes(enriched))
        # Checkpointed, not cached: a cached plan keeps all spark.sql.shuffle.partitions
        # (AQE may not coalesce it), which costs 64 tasks per read even for a small run.
        sessions = T.sessionize(enriched, args.session_gap_seconds).localCheckpoint()
        if dates.everything:
            replace = F.lit(True)
        else:
            first = T.first_affected_session_date(sessions, dates.start, args.session_gap_seconds)
            first = min(first, dates.start) if first else dates.start
            replace = F.col("session_date") >= F.lit(first)
            run.metrics["first_rewritten_session_date"] = str(first)
        scoped = sessions.where(replace)
        # Both tables and the counts read the checkpointed sessions: side by side,
        # one's tasks fill the cores another's last wave leaves idle.
        create_all(spark, STAGE_OUTPUTS["sessions"])
        _, _, counts = side_by_side(
            spark,
            lambda: write_table(spark, scoped, "gold.sessions", replace, args.branch),
            lambda: write_table(spark, T.session_daily(scoped), "gold.session_daily", replace, args.branch),
            lambda: scoped.agg(F.count(F.lit(1)).alias("sessions"), F.sum("actions").alias("events")).first(),
        )
        run.rows_in, run.rows_out, run.rows_rejected = counts["events"] or 0, counts["sessions"], 0


if __name__ == "__main__":
    main(sys.argv[1:])
