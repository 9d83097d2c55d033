"""The speed layer's message classification (spark_jobs/transforms/live.py) on
hand-written Kafka rows: each message accepted with its typed fields or rejected
with the batch ingest's reason."""
from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F

from spark_jobs.transforms import live as L

TS = dt.datetime(2023, 7, 1, 12, 0, 0)


def classify(spark, values: list[bytes]):
    kafka = spark.createDataFrame([(v, 0, i, TS) for i, v in enumerate(values)],
                                  "value BINARY, partition INT, offset BIGINT, timestamp TIMESTAMP")
    return L.classify_messages(L.messages(kafka), "t").orderBy("offset")


def test_each_message_is_accepted_with_its_fields_or_rejected_with_the_batch_reason(spark):
    rows = classify(spark, [
        b'{"user_id":"u1","timestamp":"2023-07-01 10:00:00","action_type":"edit","page_id":"","duration_ms":12,'
        b'"app_version":"1.2.3"}',
        b'{"app_version":"1.2.3","duration_ms":"7","page_id":"p","action_type":"share",'
        b'"timestamp":"2023-07-01 10:00:01","user_id":"u2"}',  # keys in any order, numbers as strings
        b'{"user_id":"u3","timestamp":"2023-07-01 10:00:00","action_type":"edit","page_id":"p","duration_ms":1,'
        b'"app_version":"1.2.3","extra":1}',
        b'{"user_id":"u4","timestamp":"2023-07-01 10:00:00","action_type":"edit","page_id":"p","duration_ms":1}',
        b'{"user_id":"u5","timestamp":"2023-07-01 10:00:00","action_type":"edit","page_id":"p","duration_ms":-1,'
        b'"app_version":"1.2.3"}',
        b'{"user_id":"","timestamp":"2023-07-01 10:00:00","action_type":"edit","page_id":"p","duration_ms":1,'
        b'"app_version":"1.2.3"}',
        b"u6,2023-07-01 10:00:00,edit,p,1,1.2.3",  # a CSV line is parsed as the batch ingest parses it
        b"u7,2023-07-01 10:00:00,edit",
        b"",
        b"u8,2023-07-01 10:00:00,edit,p\xff,1,1.2.3",
    ]).select("offset", "reject_reason", "user_id", "event_ts", "action_type", "page_id", "duration_ms_typed",
              "source_file").collect()
    assert [(r["offset"], r["reject_reason"]) for r in rows] == [
        (0, None), (1, None), (2, "wrong_column_count"), (3, "wrong_column_count"), (4, "bad_duration_ms"),
        (5, "empty_user_id"), (6, None), (7, "wrong_column_count"), (8, "blank_line"), (9, "invalid_utf8")]
    first, second, csv = rows[0], rows[1], rows[6]
    assert (first["user_id"], first["event_ts"], first["action_type"], first["page_id"], first["duration_ms_typed"]) \
        == ("u1", dt.datetime(2023, 7, 1, 10, 0), "edit", None, 12)  # an empty field is NULL, as in CSV
    assert (second["user_id"], second["duration_ms_typed"], second["page_id"]) == ("u2", 7, "p")
    assert (csv["user_id"], csv["duration_ms_typed"], csv["source_file"]) == ("u6", 1, "kafka:t/0/6")


def test_rejected_messages_keep_the_message_and_accepted_ones_their_partition_and_offset(spark):
    classified = classify(spark, [b"u7,2023-07-01 10:00:00,edit", b"u6,2023-07-01 10:00:00,edit,p,1,1.2.3",
                                  b"\xfe\xff"])
    assert [tuple(r) for r in L.rejected_live(classified, "stream:bronze:3").orderBy("source_file").collect()] == [
        ("user_interactions_live", dt.date(2023, 7, 1), "kafka:t/0/0", "u7,2023-07-01 10:00:00,edit",
         "wrong_column_count", "stream:bronze:3"),
        ("user_interactions_live", None, "kafka:t/0/2", "/v8=", "invalid_utf8", "stream:bronze:3")]
    [accepted] = L.accepted_live(classified).collect()
    assert (accepted["source_file"], accepted["partition"], accepted["offset"]) == ("kafka:t", 0, 1)
    assert L.accepted_live(classified).columns[-3:] == ["source_file", "partition", "offset"]
    assert classified.where(F.col("reject_reason").isNull()).count() == 1
