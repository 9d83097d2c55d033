"""lastfm_ingest: the LastFM-1K dump (TSV) -> bronze.lastfm_plays, bronze.rejected_rows.

Every run reads the whole dump and replaces every play: the dump is one file,
not a feed of dates. Its input report (lines read, accepted, rejected by
reason, duplicate plays, users, songs) goes to ops.job_runs and the gate's
Data Docs page."""
from __future__ import annotations

import math
import os
import sys

from pyspark.sql import Observation
from pyspark.sql import functions as F

from iceberg_catalog.tables import TableSpec
from spark_jobs.common import plan_for_input_size
from spark_jobs.ingest import REJECTED_ROWS
from spark_jobs.landing import LandingInputError, landing_bytes
from spark_jobs.stage import WHOLE_TABLE, Output, Owns, Param, Stage, StageRun
from spark_jobs.transforms import lastfm as T

PLAYS = "bronze.lastfm_plays"
DUMP_FILE = "userid-timestamp-artid-artname-traid-traname.tsv"  # the plays file's name in the LastFM-1K dump


def default_plays_path() -> str:
    return os.path.join(os.environ.get("LANDING_DIR", os.path.join(os.getcwd(), ".local", "landing")), "lastfm",
                        DUMP_FILE)


def compute(run: StageRun) -> None:
    spark, path = run.spark, run.params.plays or default_plays_path()
    size = landing_bytes(spark, path)
    if not size:
        raise LandingInputError(f"no plays at {path}: put the dump there (make lastfm-data writes one) "
                                "or give its path (--plays, the form's `plays`)")
    run.record.metrics["codegen"] = plan_for_input_size(spark, size)
    lines = spark.read.text(path).select(F.col("value").alias("line"),
                                         F.col("_metadata.file_path").alias("source_file"))
    classified = T.classify_plays(lines)
    counts = Observation("plays")
    observed = classified.observe(
        counts, F.count(F.lit(1)).alias("rows_read"),
        *[F.sum((F.col("reject_reason") == r).cast("long")).alias(r) for r in T.REASONS])
    # Years of days: each day's plays in one task, sorted, so each task writes one file
    # at a time; in that order a play's duplicates follow it, counted in the same pass.
    by_day = T.with_duplicate_marks(T.accepted_plays(observed).repartition("play_date"))
    duplicates = Observation("duplicates")
    by_day = by_day.observe(duplicates, F.sum(F.col("is_duplicate").cast("long")).alias("plays")).drop("is_duplicate")
    run.write(PLAYS, by_day, sorted_by_partition=True)
    # The rejects are read again: only the lines a cheap pattern cannot vouch for are classified.
    # Their write waits on a file per day more than it computes: the profile runs beside it.
    _, profile = run.side_by_side(
        lambda: run.write("bronze.rejected_rows",
                          T.rejected_plays(T.classify_plays(T.possibly_rejected(lines)), run.run_id)),
        lambda: run.read_output(PLAYS).agg(F.count_distinct("user_id").alias("users"),
                                           F.count_distinct("artist_name", "track_name").alias("songs")).first())
    c = counts.get
    rejected = {r: c[r] for r in T.REASONS if c[r]}
    record = run.record
    record.rows_in, record.rows_rejected = c["rows_read"], sum(rejected.values())
    record.rows_out = record.rows_in - record.rows_rejected
    record.metrics["input_report"] = {
        "lines read": record.rows_in, "accepted": record.rows_out, "rejected": record.rows_rejected,
        **{f"rejected: {r}": n for r, n in rejected.items()},
        "duplicate plays (same user, time and song; kept)": duplicates.get["plays"] or 0,
        "users": profile["users"], "songs (artist, track)": profile["songs"],
    }


def suite_parameters(run: StageRun) -> dict:
    return {"max_rejected_rows": math.floor(run.record.rows_in * run.params.max_rejected_share + 1e-9),
            "accepted_plays": run.record.rows_out}


STAGE = Stage(
    name="lastfm_ingest",
    description=__doc__,
    dated=False,
    outputs=(
        Output(TableSpec(PLAYS,
                         "user_id STRING NOT NULL, played_at TIMESTAMP NOT NULL, play_date DATE NOT NULL, "
                         "artist_id STRING, artist_name STRING NOT NULL, track_id STRING, "
                         "track_name STRING NOT NULL, source_file STRING",
                         "play_date", "Accepted LastFM-1K plays, typed; no deduplication", small_partitions=True),
               WHOLE_TABLE),
        Output(REJECTED_ROWS, Owns(f"the rejects of dataset `{T.DATASET}`", lambda run: F.col("dataset") == T.DATASET)),
    ),
    compute=compute,
    params=(
        Param("plays", "path", None, "the plays: the dump's TSV file, or a folder holding only such files "
              f"(default: $LANDING_DIR/lastfm/{DUMP_FILE})"),
        Param("max_rejected_share", "float", 0.05, "the gate blocks a run that rejects more than this share "
              "of the lines it read", minimum=0, maximum=1),
    ),
    suite_parameters=suite_parameters,
)
main = STAGE.main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
