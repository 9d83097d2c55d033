import datetime as dt

import pytest

from pyspark.sql import functions as F

from spark_jobs.transforms import ingest as T
from tests.assertions import assert_rows

RAW = "user_id string, timestamp string, action_type string, page_id string, duration_ms string, app_version string, _corrupt_record string, source_file string, folder_date date"


def classify(spark, rows):
    return T.classify_interactions(spark.createDataFrame(rows, RAW))


def test_each_reject_reason_in_contract_order(spark):
    rows = [
        ("u1", "2023-07-01 14:30:15", "page_view", "p1", "12000", "5.7.3", None, "f.csv", None),
        ("u2", "2023-07-01 14:30:15", "edit", "p1", None, None, "u2,2023-07-01 14:30:15,edit,p1", "f.csv", None),
        ("", "not a time", "edit", "p1", "-1", "x", None, "f.csv", None),  # several faults: the first one counts
        (None, "2023-07-01 14:30:15", "edit", "p1", "1", "1.0.0", None, "f.csv", None),
        ("u3", "2023-02-30 00:00:00", "edit", "p1", "1", "1.0.0", None, "f.csv", None),
        ("u3", "2023-7-1 00:00:00", "edit", "p1", "1", "1.0.0", None, "f.csv", None),
        ("u4", "2023-07-01 00:00:00", "edit", "p1", "-5", "1.0.0", None, "f.csv", None),
        ("u4", "2023-07-01 00:00:00", "edit", "p1", "1.5", "1.0.0", None, "f.csv", None),
        ("u4", "2023-07-01 00:00:00", "edit", "p1", "99999999999999999999", "1.0.0", None, "f.csv", None),
        ("u5", "2023-07-01 00:00:00", "edit", "p1", "0", "1.0", None, "f.csv", None),
        ("u5", "2023-07-01 00:00:00", "edit", "p1", "0", "v1.0.0", None, "f.csv", None),
    ]
    out = classify(spark, rows).select("user_id", "reject_reason")
    assert [r.reject_reason for r in out.collect()] == [
        None, "wrong_column_count", "empty_user_id", "empty_user_id", "bad_timestamp", "bad_timestamp",
        "bad_duration_ms", "bad_duration_ms", "bad_duration_ms", "bad_app_version", "bad_app_version",
    ]


def test_timestamps_of_the_contract_shape_parse_as_the_format_parses_them(spark):
    shaped = ["2023-01-01 00:00:42", "2024-02-29 23:59:59", "2023-02-29 10:00:00", "2023-04-31 00:00:00",
              "2023-13-01 10:00:00", "2023-00-10 10:00:00", "2023-01-00 10:00:00", "2023-01-01 24:00:00",
              "2023-01-01 23:60:00", "2023-01-01 23:59:60", "1900-02-29 00:00:00", "2000-02-29 00:00:00",
              "0000-01-01 00:00:00", "9999-12-31 23:59:59"]
    rows = [("u1", ts, "edit", "p1", "1", "1.0.0", None, "f.csv", None) for ts in shaped]
    # As strings: Python has no year 0.
    out = classify(spark, rows).select(
        "timestamp", F.col("event_ts").cast("string").alias("event_ts"), "reject_reason",
        F.try_to_timestamp("timestamp", F.lit(T.TIMESTAMP_FORMAT)).cast("string").alias("by_format"))
    got = {r.timestamp: (r.event_ts, r.reject_reason, r.by_format) for r in out.collect()}
    assert {ts: (e, reason) for ts, (e, reason, _) in got.items()} == {
        ts: (f, None if f else "bad_timestamp") for ts, (_, _, f) in got.items()}
    assert sum(f is not None for _, _, f in got.values()) == 5  # the valid dates above


def test_accepted_rows_are_typed(spark):
    rows = [("u1", "2023-07-01 23:59:59", "page_view", "p1", "0", "10.20.30", None, "f.csv", None)]
    out = T.accepted_interactions(classify(spark, rows))
    assert_rows(out, ["user_id", "event_ts", "event_date", "action_type", "page_id", "duration_ms", "app_version", "source_file"],
                [("u1", dt.datetime(2023, 7, 1, 23, 59, 59), dt.date(2023, 7, 1), "page_view", "p1", 0, "10.20.30", "f.csv")])


def test_rejected_rows_keep_raw_values_reason_and_date(spark):
    rows = [
        ("u2", "2023-07-01 10:00:00", "edit", "p1", None, None, "u2,2023-07-01 10:00:00,edit,p1", "a.csv", None),
        ("u3", "2023-07-02 10:00:00", "edit", "p1", "-1", "1.0.0", None, "b.csv", None),
        ("u4", "bad", "edit", "p1", "1", "1.0.0", None, "c.csv", dt.date(2023, 7, 9)),
    ]
    out = T.rejected_interactions(classify(spark, rows), "run-1")
    assert_rows(out, ["dataset", "event_date", "source_file", "raw", "reason", "run_id"], [
        # Still dated by its timestamp field, so a re-run of that date replaces it.
        ("user_interactions", dt.date(2023, 7, 1), "a.csv", "u2,2023-07-01 10:00:00,edit,p1", "wrong_column_count", "run-1"),
        ("user_interactions", dt.date(2023, 7, 2), "b.csv",
         '{"user_id":"u3","timestamp":"2023-07-02 10:00:00","action_type":"edit","page_id":"p1","duration_ms":"-1","app_version":"1.0.0"}',
         "bad_duration_ms", "run-1"),
        ("user_interactions", dt.date(2023, 7, 9), "c.csv",
         '{"user_id":"u4","timestamp":"bad","action_type":"edit","page_id":"p1","duration_ms":"1","app_version":"1.0.0"}',
         "bad_timestamp", "run-1"),
    ])


def test_metadata_rows_accepted_and_rejected(spark):
    schema = "user_id string, join_date string, country string, device_type string, subscription_type string, _corrupt_record string, source_file string, folder_date date"
    raw = spark.createDataFrame([
        ("u1", "2022-01-15", "US", "iPad", "free", None, "m.csv", None),
        ("", "2022-01-15", "US", "iPad", "free", None, "m.csv", None),
        ("u2", "2022-13-01", "US", "iPad", "free", None, "m.csv", None),
        ("u3", None, None, None, None, "u3,2022-01-15", "m.csv", None),
    ], schema)
    classified = T.classify_metadata(raw)
    assert_rows(T.accepted_metadata(classified), ["user_id", "join_date", "country", "device_type", "subscription_type", "source_file"],
                [("u1", dt.date(2022, 1, 15), "US", "iPad", "free", "m.csv")])
    assert sorted(r.reason for r in T.rejected_metadata(classified, "r").collect()) == ["bad_join_date", "empty_user_id", "wrong_column_count"]


HEADER = "user_id,timestamp,action_type,page_id,duration_ms,app_version"
# Lines plain_interactions takes, then lines only the CSV parser can read.
PLAIN_LINES = ["u1,2023-07-01 14:30:15,page_view,p1,12000,5.7.3", " u2,2023-12-31 23:59:59,edit,p 2,0,10.0.1",
               "u3,2023-04-30 00:00:00,édit,p1,999999999999999999,1.0.0"]
IRREGULAR_LINES = [
    'u4,"2023-07-01 14:30:15",edit,"p,1",1,1.0.0',  # quoted
    "u5,2024-02-29 10:00:00,edit,p1,1,1.0.0", "u5,2023-02-29 10:00:00,edit,p1,1,1.0.0",
    "u6,2023-07-01 14:30:15,,p1,1,1.0.0", "u7,2023-07-01 14:30:15,edit,p1,1", "u8,2023-07-01 14:30:15,edit,p1,1,1.0.0,x",
    ",2023-07-01 14:30:15,edit,p1,1,1.0.0", "u9,2023-07-01 14:30:15,edit,p1,9999999999999999999,1.0.0",
    "u10,2023-07-01 14:30:15,edit,p1,1,1.0.0\t", "u11,2023-07-01 14:30:15,ed\\it,p1,1,1.0.0",
    "u12,2023-07-01T14:30:15,edit,p1,1,1.0.0", "", "   ", "\t",
]


def _landing(tmp_path, files: dict[str, str]):
    for name, text in files.items():
        (tmp_path / name).write_bytes(text.encode())
    return str(tmp_path)


def _both_ways(spark, path):
    from spark_jobs.common import DateRange
    from spark_jobs.ingest import classify_landing_interactions
    from spark_jobs.landing import read_landing

    classified, rejectable = classify_landing_interactions(spark, path, DateRange())
    by_reader = T.classify_interactions(read_landing(spark, path, T.INTERACTION_FIELDS, DateRange()))
    columns = by_reader.columns
    assert_rows(classified.select(columns), columns, [tuple(r) for r in by_reader.collect()])
    assert_rows(rejectable.where("reject_reason IS NOT NULL").select(columns), columns,
                [tuple(r) for r in by_reader.where("reject_reason IS NOT NULL").collect()])
    return classified, rejectable


def test_plain_lines_are_split_as_the_csv_reader_and_classifier_take_them(spark, tmp_path):
    path = _landing(tmp_path, {
        "a.csv": "\ufeff" + "\r\n".join(["", HEADER, *PLAIN_LINES, *IRREGULAR_LINES]) + "\r\n",
        "b.csv": "\n".join([HEADER.upper(), *PLAIN_LINES[:1]]), "c.csv": "\n\n", "d.csv": HEADER + "\n"})
    lines = spark.read.text(path).select(
        F.col("value").alias("line"), F.lit("f").alias("source_file"), F.lit(None).alias("folder_date"))
    # By the pattern, and by looking each line up among the irregular ones.
    for plain in (T.plain_lines(lines), T.plain_lines(lines, T.irregular_lines(lines))):
        assert sorted(r.line for r in T.plain_interactions(plain).select(
            F.concat_ws(",", *T.INTERACTION_FIELDS).alias("line")).collect()) == sorted(PLAIN_LINES + PLAIN_LINES[:1])
    classified, rejectable = _both_ways(spark, path)
    assert "BroadcastHashJoin" in classified._jdf.queryExecution().executedPlan().toString()  # the lookup
    assert classified.count() == len(PLAIN_LINES) + 1 + len(IRREGULAR_LINES) - 3  # less the blank lines
    assert rejectable.count() == len(IRREGULAR_LINES) - 3  # only the parser's lines were checkpointed
    assert rejectable.where("reject_reason IS NULL").count() == 4  # quoted, leap day, empty action, backslash


def test_without_the_lookup_plain_lines_are_matched_by_the_pattern_again(spark, tmp_path, monkeypatch):
    import spark_jobs.ingest

    monkeypatch.setattr(spark_jobs.ingest, "MAX_LOOKED_UP_IRREGULAR_BYTES", 0)
    path = _landing(tmp_path, {"a.csv": "\n".join([HEADER, *PLAIN_LINES, *IRREGULAR_LINES])})
    classified, _ = _both_ways(spark, path)
    assert "BroadcastHashJoin" not in classified._jdf.queryExecution().executedPlan().toString()
    assert classified.where("reject_reason IS NULL").count() == len(PLAIN_LINES) + 4


def test_a_header_line_repeated_in_a_file_is_a_rejected_row(spark, tmp_path):
    path = _landing(tmp_path, {"a.csv": "\n".join([HEADER, PLAIN_LINES[0], HEADER, PLAIN_LINES[1]])})
    classified, _ = _both_ways(spark, path)
    assert [r.reject_reason for r in classified.where("user_id = 'user_id'").collect()] == ["bad_timestamp"]


def test_a_wrong_header_is_an_error_naming_the_file(spark, tmp_path):
    from spark_jobs.common import DateRange
    from spark_jobs.ingest import classify_landing_interactions
    from spark_jobs.landing import LandingInputError

    path = _landing(tmp_path, {"a.csv": "\n".join([HEADER.replace("page_id,duration_ms", "duration_ms,page_id"),
                                                   PLAIN_LINES[0], IRREGULAR_LINES[0]])})
    with pytest.raises(LandingInputError, match=r"a\.csv: the header has columns"):
        classify_landing_interactions(spark, path, DateRange())


def test_a_file_without_header_is_an_error_even_when_every_line_is_plain(spark, tmp_path):
    from spark_jobs.common import DateRange
    from spark_jobs.ingest import classify_landing_interactions
    from spark_jobs.landing import LandingInputError

    path = _landing(tmp_path, {"a.csv": "\n".join([HEADER, *PLAIN_LINES]), "b.csv": "\n".join(PLAIN_LINES)})
    with pytest.raises(LandingInputError, match=r"b\.csv: the header has columns \['u1'"):
        classify_landing_interactions(spark, path, DateRange())


def test_file_names_are_taken_as_spark_reads_them(spark, tmp_path):
    # A space is "%20" in the file names Spark reports; files under a hidden
    # folder are not read by the reader, so their bad header is no error either.
    (tmp_path / "date=2023-07-01").mkdir()
    (tmp_path / "_staging").mkdir()
    path = _landing(tmp_path, {"date=2023-07-01/a b.csv": "\n".join([HEADER, *PLAIN_LINES, IRREGULAR_LINES[0]]),
                               "_staging/c.csv": "not,the,header\n"})
    classified, rejectable = _both_ways(spark, path)
    assert {r.source_file.rsplit("/", 1)[-1] for r in classified.select("source_file").distinct().collect()} == {
        "a%20b.csv"}
    assert classified.count() == len(PLAIN_LINES) + 1
    assert rejectable.count() == 1  # the header was found by name, so only the one irregular line was parsed


def test_listing_skips_hidden_names_as_spark_does_but_not_hidden_partition_folders(spark, tmp_path):
    from spark_jobs.landing import _list_files

    for name in ["_batch=1/a.csv", "_staging/b.csv", ".tmp/c.csv", "date=2023-07-01/.d.csv", "date=2023-07-01/e.csv"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(HEADER + "\n")
    files, partitions = _list_files(spark, str(tmp_path))
    assert sorted(f.split(str(tmp_path), 1)[1] for f in files) == ["/_batch=1/a.csv", "/date=2023-07-01/e.csv"]
    assert sorted(partitions) == ["_batch", "date"]
