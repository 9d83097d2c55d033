"""ingest: landing files -> bronze.interactions, bronze.user_metadata, bronze.rejected_rows."""
from __future__ import annotations

import math
import os
import sys

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from iceberg_catalog.tables import TableSpec
from spark_jobs.common import DateRange, plan_for_input_size
from spark_jobs.landing import landing_bytes, read_csv_lines, read_landing
from spark_jobs.stage import WHOLE_TABLE, Output, Owns, Param, Stage, StageRun, run_dates
from spark_jobs.transforms import ingest as T

MIN_SPLITS_CONF = "spark.sql.files.minPartitionNum"
# Up to this size of irregular lines (the bench's 1% of 10M lines: 6 MB), the plain
# lines are found by looking each line up in a broadcast of them instead of matching
# the pattern a second time; a larger broadcast would cost the driver's memory.
MAX_LOOKED_UP_IRREGULAR_BYTES = 64 * 1024 * 1024
INTERACTION_COLUMNS = (
    "user_id STRING NOT NULL, event_ts TIMESTAMP NOT NULL, event_date DATE NOT NULL, "
    "action_type STRING, page_id STRING, duration_ms BIGINT NOT NULL, app_version STRING NOT NULL"
)
USER_COLUMNS = "join_date DATE, country STRING, device_type STRING, subscription_type STRING"
# Written by every ingest, each dataset's rows by its own stage.
REJECTED_ROWS = TableSpec("bronze.rejected_rows",
                          "dataset STRING NOT NULL, event_date DATE, source_file STRING, raw STRING, "
                          "reason STRING NOT NULL, run_id STRING NOT NULL",
                          "dataset, event_date",
                          "Landing rows that failed parsing, with the reason; event_date is NULL when unknown",
                          small_partitions=True)


def _landing(name: str) -> str:
    return os.path.join(os.environ.get("LANDING_DIR", os.path.join(os.getcwd(), ".local", "landing")), name)


def _rejected_rows_of_run(run: StageRun) -> Column:
    """Interaction rejects of the run's dates or of no date at all (every run
    re-derives those from the same files), and every metadata reject: the
    metadata is a snapshot each run replaces."""
    interactions = (F.col("dataset") == "user_interactions") & (
        run.dates.contains(F.col("event_date")) | F.col("event_date").isNull())
    return interactions | (F.col("dataset") == "user_metadata")


def compute(run: StageRun) -> None:
    spark, dates, p = run.spark, run.dates, run.params
    interactions_path = p.interactions or _landing("user_interactions")
    metadata_path = p.metadata or _landing("user_metadata")
    if spark.conf.get(MIN_SPLITS_CONF, None) is None:
        # Eight read splits per core: a big landing file otherwise becomes a few long
        # tasks whose last wave leaves cores idle. Splits stay at most 128 MB.
        spark.conf.set(MIN_SPLITS_CONF, str(8 * spark.sparkContext.defaultParallelism))
    run.record.metrics["codegen"] = plan_for_input_size(
        spark, landing_bytes(spark, interactions_path) + landing_bytes(spark, metadata_path))
    classified, rejectable = classify_landing_interactions(spark, interactions_path, dates)
    accepted = F.col("reject_reason").isNull()
    row_date = F.when(accepted, F.col("event_date")).otherwise(F.coalesce("folder_date", "event_date"))
    # Rows of a flat file dated outside the run belong to other runs; rejected
    # rows with no date at all are re-derived by every run from the same file.
    in_run = dates.contains(row_date) | (~accepted & row_date.isNull())
    counts = Observation("interactions")
    observed = classified.observe(
        counts,
        F.count(F.lit(1)).alias("rows_read"),
        F.sum((in_run & accepted).cast("long")).alias("accepted"),
        F.sum((in_run & ~accepted).cast("long")).alias("rejected"),
        F.sum((~in_run).cast("long")).alias("out_of_range"),
        *_reason_counts(T.INTERACTION_REASONS, in_run),
    )
    meta = T.classify_metadata(read_landing(spark, metadata_path, T.METADATA_FIELDS, DateRange()))
    meta_counts = Observation("metadata")
    meta = meta.observe(meta_counts, F.count(F.lit(1)).alias("rows_read"),
                        F.sum(F.col("reject_reason").isNull().cast("long")).alias("accepted"),
                        F.sum(F.col("reject_reason").isNotNull().cast("long")).alias("rejected"),
                        *_reason_counts(T.METADATA_REASONS, F.lit(True)))
    meta = meta.persist(StorageLevel.MEMORY_AND_DISK)
    # The metadata's small jobs and commit run beside the events' write (common.side_by_side).
    run.side_by_side(
        # The interaction counts come from this pass only.
        lambda: run.write("bronze.interactions", T.accepted_interactions(observed.where(in_run))),
        lambda: run.write("bronze.user_metadata", T.accepted_metadata(meta)),
    )
    # Both datasets' rejected rows in one commit.
    run.write("bronze.rejected_rows", T.rejected_interactions(rejectable.where(in_run), run.run_id).unionByName(
        T.rejected_metadata(meta, run.run_id)))
    meta.unpersist()
    c, m = counts.get, meta_counts.get
    record = run.record
    record.rows_in = (c["accepted"] or 0) + (c["rejected"] or 0)
    record.rows_out = c["accepted"] or 0
    record.rows_rejected = c["rejected"] or 0
    record.metrics.update({
        "interactions_rows_read": c["rows_read"], "interactions_accepted": c["accepted"] or 0,
        "interactions_rejected": c["rejected"] or 0, "interactions_out_of_range": c["out_of_range"] or 0,
        "metadata_rows_read": m["rows_read"], "metadata_accepted": m["accepted"] or 0,
        "metadata_rejected": m["rejected"] or 0,
        "rejected_by_reason": {
            **{f"user_interactions.{r}": c[r] for r in T.INTERACTION_REASONS if c[r]},
            **{f"user_metadata.{r}": m[r] for r in T.METADATA_REASONS if m[r]},
        },
    })


def suite_parameters(run: StageRun) -> dict:
    # bronze.rejected_rows holds the rejects of both files: its bound counts the rows of both.
    rows_read = run.record.rows_in + run.record.metrics["metadata_rows_read"]
    return {"max_rejected_rows": math.floor(rows_read * run.params.max_rejected_share + 1e-9)}


def classify_landing_interactions(spark: SparkSession, path: str, dates: DateRange) -> tuple[DataFrame, DataFrame]:
    """Every landing row of the run, classified, and a cheaper frame that holds
    every rejected row of the first (and maybe others).

    Spark's CSV parser and the classifier are most of ingest's cost, and nearly all
    lines are plain (T.PLAIN_INTERACTION_LINE): those are split as text, and only
    the rest go through the parser, once, into a checkpoint that both outputs read.
    A file's header is its first non-blank line, which the CSV reader skips; when a
    line equal to it appears again in the file, only the reader knows which one is
    first, so the run takes the reader.
    """
    text = read_csv_lines(spark, path, T.INTERACTION_FIELDS, dates)
    if text is not None:
        lines, headers = text
        irregular = T.irregular_lines(lines).localCheckpoint()
        file_header = F.create_map(*[F.lit(x) for pair in headers.items() for x in pair])[F.col("source_file")]
        is_header = F.coalesce(F.col("line") == file_header, F.lit(False))
        per_file = irregular.groupBy("source_file").agg(F.sum(is_header.cast("long")).alias("headers"),
                                                        F.sum(F.octet_length("line")).alias("bytes")).collect()
        header_counts = [r["headers"] for r in per_file if r["headers"]]
        if len(header_counts) == len(headers) and all(n == 1 for n in header_counts):
            rows = T.classify_interactions(T.parse_csv_lines(irregular.where(~is_header), T.INTERACTION_FIELDS))
            small = sum(r["bytes"] for r in per_file) <= MAX_LOOKED_UP_IRREGULAR_BYTES
            plain = T.plain_lines(lines, irregular if small else None)
            return T.plain_interactions(plain).unionByName(rows), rows
    classified = T.classify_interactions(read_landing(spark, path, T.INTERACTION_FIELDS, dates))
    return classified, classified


def _reason_counts(reasons: tuple[str, ...], counted: Column) -> list[Column]:
    """One count per reject reason, taken in the same pass as the other counts."""
    return [F.sum((counted & (F.col("reject_reason") == r)).cast("long")).alias(r) for r in reasons]


STAGE = Stage(
    name="ingest",
    description=__doc__,
    outputs=(
        # Written once per run and read once, by enrich: at 10M events the dictionary
        # lookups of its nearly unique timestamps cost the write 3 s, more than plain
        # files cost enrich's read.
        Output(TableSpec("bronze.interactions", f"{INTERACTION_COLUMNS}, source_file STRING", "event_date",
                         "Accepted landing interactions, typed; no deduplication", plain_encoding=True),
               run_dates("event_date")),
        Output(TableSpec("bronze.user_metadata", f"user_id STRING NOT NULL, {USER_COLUMNS}, source_file STRING", "",
                         "Accepted landing user metadata as read"),
               WHOLE_TABLE),
        Output(REJECTED_ROWS, Owns("interaction rejects of the run's dates or of no date, and every metadata reject",
                                   _rejected_rows_of_run)),
    ),
    compute=compute,
    params=(
        Param("interactions", "path", None, "landing path of the interactions (default: $LANDING_DIR/user_interactions)"),
        Param("metadata", "path", None, "landing path of the user metadata (default: $LANDING_DIR/user_metadata)"),
        Param("max_rejected_share", "float", 0.05, "the gate blocks a run that rejects more than this share of "
              "the rows it read", minimum=0, maximum=1),
    ),
    suite_parameters=suite_parameters,
)
main = STAGE.main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
