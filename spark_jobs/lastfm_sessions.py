"""lastfm_sessions: bronze.lastfm_plays -> gold.lastfm_top_sessions, gold.lastfm_top_songs.

Cuts every user's plays into sessions (the GoodNote sessionization with the
LastFM gap and order), keeps the longest, and counts the songs played in them.
Both tables are small and rebuilt whole by every run."""
from __future__ import annotations

import sys

from pyspark.sql import functions as F

from iceberg_catalog.tables import TableSpec
from spark_jobs.common import estimated_bytes, plan_for_input_size
from spark_jobs.stage import WHOLE_TABLE, Output, Param, Stage, StageRun
from spark_jobs.transforms import lastfm as T

TOP_SESSIONS, TOP_SONGS = "gold.lastfm_top_sessions", "gold.lastfm_top_songs"


def compute(run: StageRun) -> None:
    spark, p = run.spark, run.params
    plays = run.read("bronze.lastfm_plays")
    run.record.metrics["codegen"] = plan_for_input_size(spark, estimated_bytes(plays))
    # A few rows, checkpointed: the songs' pass reads them instead of cutting the sessions again.
    top = T.top_sessions(T.sessions(plays, p.session_gap_seconds), p.top_sessions).localCheckpoint()
    # The songs' pass reads only the days those sessions span: a few of the table's files.
    days = [r.day for r in top.select(F.explode(F.sequence(F.to_date("session_start"), F.to_date("session_end")))
                                      .alias("day")).distinct().collect()]
    songs = T.top_songs(plays.where(F.col("play_date").isin(days)), top, p.top_songs)
    run.side_by_side(lambda: run.write(TOP_SESSIONS, top), lambda: run.write(TOP_SONGS, songs))
    run.record.rows_in, run.record.rows_out, run.record.rows_rejected = plays.count(), top.count(), 0


def suite_parameters(run: StageRun) -> dict:
    """The songs counted are plays of the sessions kept: their plays add up to at most those sessions' tracks."""
    return {"tracks_of_top_sessions": run.read_output(TOP_SESSIONS).agg(F.sum("tracks")).first()[0] or 0}


STAGE = Stage(
    name="lastfm_sessions",
    description=__doc__,
    dated=False,
    outputs=(
        Output(TableSpec(TOP_SESSIONS, "rank INT NOT NULL, session_id STRING NOT NULL, user_id STRING NOT NULL, "
                         "session_start TIMESTAMP NOT NULL, session_end TIMESTAMP NOT NULL, tracks BIGINT NOT NULL",
                         "", "The longest listening sessions by plays"),
               WHOLE_TABLE),
        Output(TableSpec(TOP_SONGS, "rank INT NOT NULL, artist_name STRING NOT NULL, track_name STRING NOT NULL, "
                         "plays BIGINT NOT NULL", "", "The songs played most within the longest sessions"),
               WHOLE_TABLE),
    ),
    compute=compute,
    after=("lastfm_ingest",),
    params=(
        Param("session_gap_seconds", "int", T.DEFAULT_GAP_SECONDS, "a new session starts after more than this "
              "many seconds without a play", minimum=1),
        Param("top_sessions", "int", 50, "how many of the longest sessions are kept", minimum=1),
        Param("top_songs", "int", 10, "how many songs of those sessions are kept", minimum=1),
    ),
    suite_parameters=suite_parameters,
)
main = STAGE.main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
