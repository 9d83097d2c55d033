"""sessions: silver -> gold.sessions and gold.session_daily.

A session can run across midnight and, for a very active user, across days, so
sessions are cut from the whole history; a run then rewrites every session date
from the first one its dates can change (see first_affected_session_date)."""
from __future__ import annotations

import sys

from pyspark.sql import functions as F

from iceberg_catalog.tables import TableSpec
from spark_jobs.common import estimated_bytes, plan_for_input_size
from spark_jobs.stage import Output, Param, Stage, StageRun, dates_from
from spark_jobs.transforms import sessions as T

FIRST_DATE = "first_rewritten_session_date"
FROM_FIRST_AFFECTED = dates_from("session_date", FIRST_DATE,
                                 "the date of the first session the run's dates can extend (a session ending "
                                 "within one gap before the run's first midnight)")


def compute(run: StageRun) -> None:
    spark, gap = run.spark, run.params.session_gap_seconds
    enriched = run.read("silver.interactions_enriched")
    run.record.metrics["codegen"] = plan_for_input_size(spark, estimated_bytes(enriched))
    # Checkpointed, not cached: a cached plan keeps all spark.sql.shuffle.partitions
    # (AQE may not coalesce it), which costs 64 tasks per read even for a small run.
    sessions = T.sessionize(enriched, gap).localCheckpoint()
    if not run.dates.everything:
        first = T.first_affected_session_date(sessions, run.dates.start, gap)
        run.facts[FIRST_DATE] = min(first, run.dates.start) if first else run.dates.start
        run.record.metrics[FIRST_DATE] = str(run.facts[FIRST_DATE])
    scoped = sessions.where(run.owned("gold.sessions"))
    # Both tables and the counts read the checkpointed sessions: side by side,
    # one's tasks fill the cores another's last wave leaves idle.
    _, _, counts = run.side_by_side(
        lambda: run.write("gold.sessions", scoped),
        lambda: run.write("gold.session_daily", T.session_daily(scoped)),
        lambda: scoped.agg(F.count(F.lit(1)).alias("sessions"), F.sum("actions").alias("events")).first(),
    )
    run.record.rows_in, run.record.rows_out, run.record.rows_rejected = counts["events"] or 0, counts["sessions"], 0


def suite_parameters(run: StageRun) -> dict:
    """Every published event is in exactly one session: the sessions the run owns
    hold the published events minus those of the sessions it leaves as they are."""
    events = run.read("silver.interactions_enriched").count()
    kept = run.read_output("gold.sessions").where(~run.owned("gold.sessions")).agg(F.sum("actions")).first()[0]
    return {"events_in_owned_sessions": events - (kept or 0)}


STAGE = Stage(
    name="sessions",
    description=__doc__,
    outputs=(
        Output(TableSpec("gold.sessions",
                         "session_id STRING NOT NULL, user_id STRING NOT NULL, session_start TIMESTAMP, "
                         "session_end TIMESTAMP, session_date DATE NOT NULL, actions BIGINT, "
                         "session_duration_ms BIGINT, is_bounce BOOLEAN, device_type STRING, country STRING",
                         "session_date"),
               FROM_FIRST_AFFECTED),
        Output(TableSpec("gold.session_daily",
                         "session_date DATE NOT NULL, dimension STRING, dimension_value STRING, sessions BIGINT, "
                         "users BIGINT, avg_actions DOUBLE, avg_duration_ms DOUBLE, p50_duration_ms DOUBLE, "
                         "bounce_rate DOUBLE, sessions_per_user DOUBLE", "session_date"),
               FROM_FIRST_AFFECTED),
    ),
    compute=compute,
    after=("enrich",),
    params=(
        Param("session_gap_seconds", "int", T.DEFAULT_GAP_SECONDS, "a new session starts after more than this many seconds without "
              "an event", minimum=1),
    ),
    suite_parameters=suite_parameters,
)
main = STAGE.main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
