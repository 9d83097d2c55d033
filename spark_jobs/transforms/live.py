"""The speed layer's rules (docs/speed_layer.md): Kafka messages classified as the
batch ingest classifies landing lines, and sessions cut by the batch's rules
from a stream. Every function is ``DataFrame -> DataFrame``."""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_jobs.transforms import ingest as T
from spark_jobs.transforms import sessions as S

LIVE_DATASET = "user_interactions_live"  # bronze.rejected_rows' dataset of the stream's rejects


def messages(kafka: DataFrame) -> DataFrame:
    """(line, partition, offset, kafka_ts) of the Kafka source's rows: the value's bytes as a string."""
    return kafka.select(F.col("value").cast("string").alias("line"), "partition", "offset",
                        F.col("timestamp").alias("kafka_ts"))


def classify_messages(msgs: DataFrame, topic: str) -> DataFrame:
    """classify_interactions' columns for each message, plus ``partition``,
    ``offset``, ``kafka_ts`` and ``line``.

    A message that is a JSON object (what speed_layer.producer sends for a row)
    gives its six fields as strings, an empty one as NULL (as the CSV reader
    reads an empty field); an object with other keys than the six is a
    ``wrong_column_count``. Any other message is a landing line, rejected or
    parsed exactly as the batch ingest does (blank, undecodable, too long, a
    CSV line of the wrong column count); only those meet the CSV parser."""
    # One JSON parse per message: to a map, whose keys say whether the fields are the six.
    fields = F.when(F.ltrim("line").startswith("{"), F.from_json("line", "MAP<STRING, STRING>"))
    is_object = F.col("_fields").isNotNull()
    source = F.format_string(f"kafka:{topic}/%d/%d", F.col("partition"), F.col("offset"))
    framed = msgs.select(F.col("line").alias("message"), "partition", "offset", "kafka_ts",
                         fields.alias("_fields"), source.alias("source_file"),
                         F.lit(None).cast("date").alias("folder_date"))
    # The CSV parser gets the other messages only (NULL is neither parsed nor rejected).
    as_csv = T.parse_csv_lines(framed.withColumn("line", F.when(~is_object, F.col("message"))),
                               T.INTERACTION_FIELDS, keep=("message", "partition", "offset", "kafka_ts", "_fields"))
    right_keys = F.array_sort(F.map_keys("_fields")) == F.array(*[F.lit(f) for f in sorted(T.INTERACTION_FIELDS)])
    rows = as_csv.select(
        *[F.when(is_object, F.nullif(F.col("_fields")[f], F.lit(""))).otherwise(F.col(f)).alias(f)
          for f in T.INTERACTION_FIELDS],
        F.when(is_object, F.when(~right_keys, F.col("message"))).otherwise(F.col(T.CORRUPT)).alias(T.CORRUPT),
        # An object's bytes are checked as a line's are (not UTF-8, too long).
        F.coalesce(T.LINE_REJECT, F.when(is_object, T.line_reject(F.col("message")))).alias(T.LINE_REJECT),
        F.col("message").alias("line"), "partition", "offset", "kafka_ts", "source_file",
        "folder_date")
    return T.classify_interactions(rows)


def accepted_live(classified: DataFrame) -> DataFrame:
    """bronze.interactions_live rows: bronze.interactions' columns (``source_file``
    is ``kafka:<topic>``) and the message's ``partition`` and ``offset``."""
    return classified.where(F.col("reject_reason").isNull()).select(
        "user_id", "event_ts", "event_date", "action_type", "page_id",
        F.col("duration_ms_typed").alias("duration_ms"), "app_version",
        F.regexp_extract("source_file", r"^(kafka:[^/]*)/", 1).alias("source_file"), "partition", "offset")


def rejected_live(classified: DataFrame, run_id: str) -> DataFrame:
    """bronze.rejected_rows rows: the message as it came (raw_line), its reason, and
    ``kafka:<topic>/<partition>/<offset>`` as its source."""
    return classified.where(F.col("reject_reason").isNotNull()).select(
        F.lit(LIVE_DATASET).alias("dataset"), "event_date", "source_file",
        T.raw_line(F.col("line")).alias("raw"), F.col("reject_reason").alias("reason"),
        F.lit(run_id).alias("run_id"))


# --- sessions ---------------------------------------------------------------------


def sessions_of_stream(events: DataFrame, gap_seconds: int) -> DataFrame:
    """(user_id, session_start, session_end, events, duration_ms) per session of a
    stream of events with a watermark, as S.session_rows takes them: the rules of
    S.sessions_of, kept as state by Spark's session windows.

    An event opens a window of the gap after it; windows that overlap are one
    session. Overlap means "less than the window apart", and the contract
    continues a session at exactly the gap: the window is the gap plus the
    smallest step of a timestamp. A session is emitted once the watermark
    passes its window's end: its last event plus the gap. The last event is the
    largest in S.EVENT_ORDER (NULL sorts first, as in the batch's order)."""
    window = F.session_window("event_ts", f"{gap_seconds} seconds 1 microsecond")
    return (events.groupBy(window.alias("session"), "user_id")
            .agg(F.min("event_ts").alias("session_start"), F.max("event_ts").alias("session_end"),
                 F.count(F.lit(1)).alias("events"),
                 F.max(F.struct(*S.EVENT_ORDER))["duration_ms"].alias("duration_ms"))
            .select("user_id", "session_start", "session_end", "events", "duration_ms"))
