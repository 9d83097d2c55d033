"""The speed layer's rules (docs/speed_layer.md): Kafka messages classified as the
batch ingest classifies landing lines, and sessions kept as state that grows
one event at a time but ends as the batch sessionization's.

Every function but ``advance_sessions`` is ``DataFrame -> DataFrame``;
``advance_sessions`` is the per-user state function of
``applyInPandasWithState``.
"""
from __future__ import annotations

import json
from collections.abc import Iterator

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_jobs.transforms import ingest as T

LIVE_DATASET = "user_interactions_live"  # bronze.rejected_rows' dataset of the stream's rejects
MESSAGE_COLUMNS = ("line", "partition", "offset", "kafka_ts")


def messages(kafka: DataFrame) -> DataFrame:
    """(line, partition, offset, kafka_ts) of the Kafka source's rows: the value's bytes as a string."""
    return kafka.select(F.col("value").cast("string").alias("line"), "partition", "offset",
                        F.col("timestamp").alias("kafka_ts"))


def _json_fields(line: Column) -> Column:
    schema = ", ".join(f"`{f}` STRING" for f in T.INTERACTION_FIELDS)
    return F.from_json(line, schema)


def classify_messages(msgs: DataFrame, topic: str) -> DataFrame:
    """classify_interactions' columns for each message, plus ``partition``,
    ``offset``, ``kafka_ts`` and ``line``.

    A message that is a JSON object (what speed_layer.producer sends for a row)
    gives its six fields, as strings, an empty one as NULL (as the CSV reader
    reads an empty field); an object with other keys than the six is a
    ``wrong_column_count``. Any other message is a landing line, rejected or
    parsed exactly as the batch ingest does (blank, undecodable, too long, a
    CSV line of the wrong column count)."""
    line = F.col("line")
    keys = F.json_object_keys(line)
    is_object = keys.isNotNull() & F.ltrim(line).startswith("{")
    right_keys = F.array_sort(keys) == F.array_sort(F.array(*[F.lit(f) for f in T.INTERACTION_FIELDS]))
    source = F.format_string(f"kafka:{topic}/%d/%d", F.col("partition"), F.col("offset"))
    framed = msgs.select(*MESSAGE_COLUMNS, source.alias("source_file"), F.lit(None).cast("date").alias("folder_date"))
    as_csv = T.parse_csv_lines(framed, T.INTERACTION_FIELDS, keep=MESSAGE_COLUMNS)
    parsed = _json_fields(line)
    rows = as_csv.select(
        *[F.when(is_object, F.nullif(parsed[f], F.lit(""))).otherwise(F.col(f)).alias(f) for f in T.INTERACTION_FIELDS],
        F.when(is_object, F.when(~right_keys, line)).otherwise(F.col(T.CORRUPT)).alias(T.CORRUPT),
        F.when(is_object, F.lit(None).cast("string")).otherwise(F.col(T.LINE_REJECT)).alias(T.LINE_REJECT),
        *MESSAGE_COLUMNS, "source_file", "folder_date",
    )
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


# --- sessions as state ------------------------------------------------------------

SESSION_STATE_SCHEMA = "open_sessions STRING"
SESSION_OUTPUT_SCHEMA = ("user_id STRING, session_start TIMESTAMP, session_end TIMESTAMP, events BIGINT, "
                         "duration_ms BIGINT")
SESSION_INPUT_COLUMNS = ("user_id", "event_ts", "ts_us", "action_type", "page_id", "duration_ms")


def _order_key(action_type, page_id, duration_ms) -> list:
    # Spark orders NULL first: ("" < any text) stands in for it, with a flag so NULL < "".
    return [action_type is not None, action_type or "", page_id is not None, page_id or "", int(duration_ms)]


def merge_event(sessions: list[dict], ts_us: int, key: list, duration_ms: int, gap_us: int) -> list[dict]:
    """``sessions`` (a user's open sessions, apart by more than the gap) with one
    more event: it joins every session it is within the gap of (bridging two
    merges them) or starts one. Each session keeps what gold.sessions needs of
    it: first and last time, events, and the last event in the sort order
    (time, action_type, page_id, duration_ms) with its duration."""
    joined = {"start": ts_us, "end": ts_us, "events": 1, "last": [ts_us, *key], "duration_ms": duration_ms}
    apart = []
    for s in sessions:
        if s["start"] - gap_us <= ts_us <= s["end"] + gap_us:
            last = max(joined, s, key=lambda x: x["last"])
            joined = {"start": min(joined["start"], s["start"]), "end": max(joined["end"], s["end"]),
                      "events": joined["events"] + s["events"], "last": last["last"],
                      "duration_ms": last["duration_ms"]}
        else:
            apart.append(s)
    return sorted([*apart, joined], key=lambda s: s["start"])


def advance_sessions(gap_seconds: int):
    """The state function: folds a user's new events into their open sessions and
    emits, once, every session whose end plus the gap the watermark has passed
    (no event the stream still accepts can extend it). Spark calls it for a
    user with new events, and for one whose timeout (the earliest such end plus
    gap) the watermark has passed."""
    import pandas as pd

    gap_us = gap_seconds * 1_000_000

    def advance(key: tuple, batches: Iterator["pd.DataFrame"], state) -> Iterator["pd.DataFrame"]:
        sessions = json.loads(state.get[0]) if state.exists else []
        for events in batches:
            for ts_us, action, page, duration in zip(events["ts_us"], events["action_type"], events["page_id"],
                                                     events["duration_ms"]):
                action = None if pd.isna(action) else action
                page = None if pd.isna(page) else page
                sessions = merge_event(sessions, int(ts_us), _order_key(action, page, duration), int(duration),
                                       gap_us)
        watermark_us = state.getCurrentWatermarkMs() * 1000
        closed = [s for s in sessions if s["end"] + gap_us < watermark_us]
        sessions = [s for s in sessions if s["end"] + gap_us >= watermark_us]
        if sessions:
            state.update((json.dumps(sessions),))
            state.setTimeoutTimestamp(min(s["end"] + gap_us for s in sessions) // 1000)
        else:
            state.remove()
        if closed:
            yield pd.DataFrame({
                "user_id": [key[0]] * len(closed),
                "session_start": pd.to_datetime([s["start"] for s in closed], unit="us"),
                "session_end": pd.to_datetime([s["end"] for s in closed], unit="us"),
                "events": [s["events"] for s in closed],
                "duration_ms": [s["duration_ms"] for s in closed],
            })

    return advance


def session_input(accepted: DataFrame) -> DataFrame:
    return accepted.select("user_id", "event_ts", F.unix_micros("event_ts").alias("ts_us"), "action_type",
                           "page_id", "duration_ms")
