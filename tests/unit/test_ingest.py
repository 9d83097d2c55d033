import base64
import datetime as dt
import json
from pathlib import Path

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


def _landing(tmp_path, files: dict[str, str | bytes]):
    for name, text in files.items():
        (tmp_path / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(tmp_path)


def _by_csv_reader(spark, path, fields=T.INTERACTION_FIELDS):
    """What Spark's own CSV reader gives for the CSV files under ``path``
    (read_landing's reader before it read lines): it skips blank lines, and
    decodes bytes that are not UTF-8 to U+FFFD."""
    df = (spark.read.option("header", True).option("enforceSchema", False).option("mode", "PERMISSIVE")
          .option("columnNameOfCorruptRecord", T.CORRUPT).schema(T.csv_schema(fields)).csv(path))
    folder_date = F.col("date").cast("date") if "date" in df.columns else F.lit(None).cast("date")
    return df.select(*fields, T.CORRUPT, F.col("_metadata.file_path").alias("source_file"), folder_date.alias("folder_date"))


def _by_text(spark, path):
    """The landing's text path, as the ingest job takes it when each file's header
    appears once: the plain lines split as text, the others parsed."""
    from spark_jobs.common import DateRange
    from spark_jobs.landing import header_line, read_csv_lines

    lines, headers = read_csv_lines(spark, path, T.INTERACTION_FIELDS, DateRange())
    irregular = T.irregular_lines(lines)
    rows = T.classify_interactions(T.parse_csv_lines(irregular.where(~header_line(headers)), T.INTERACTION_FIELDS))
    return T.plain_interactions(T.plain_lines(lines, irregular)).unionByName(rows)


def _both_ways(spark, path):
    from spark_jobs.common import DateRange
    from spark_jobs.ingest import classify_landing_interactions
    from spark_jobs.landing import read_landing

    classified, rejectable = classify_landing_interactions(spark, path, DateRange())
    by_lines = T.classify_interactions(read_landing(spark, path, T.INTERACTION_FIELDS, DateRange()))
    columns = by_lines.columns
    assert_rows(classified.select(columns), columns, [tuple(r) for r in by_lines.collect()])
    assert_rows(rejectable.where("reject_reason IS NOT NULL").select(columns), columns,
                [tuple(r) for r in by_lines.where("reject_reason IS NOT NULL").collect()])
    # A line Spark's CSV reader reads as it is (not blank, UTF-8, not too long) is the row it gives.
    text = F.concat_ws(",", *T.INTERACTION_FIELDS, T.CORRUPT)
    as_read = ~text.contains("\ufffd")  # what the reader decoded bytes that are not UTF-8 to (and a real U+FFFD)
    by_reader = T.classify_interactions(_by_csv_reader(spark, path)).where(
        as_read & (F.octet_length(F.coalesce(T.CORRUPT, text)) <= T.MAX_LINE_BYTES))
    assert_rows(by_lines.where(as_read & ~F.coalesce(F.col("reject_reason").isin(*T.LINE_REASONS), F.lit(False))),
                columns, [tuple(r) for r in by_reader.collect()])
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
    # Every line but the headers, blank ones included: a.csv's first (after the byte
    # order mark, which the reader skips) and c.csv's two.
    assert classified.count() == len(PLAIN_LINES) + 1 + len(IRREGULAR_LINES) + 3
    assert rejectable.count() == len(IRREGULAR_LINES) + 3  # only the parser's lines were checkpointed
    assert rejectable.where("reject_reason IS NULL").count() == 4  # quoted, leap day, empty action, backslash
    assert rejectable.where("reject_reason = 'blank_line'").count() == 6


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


# --- every physical line is a row: LINE_REASONS ------------------------------------------
GOOD = PLAIN_LINES[0].encode()
LONG_LINE = b"u1,2023-07-01 14:30:15,edit," + b"p" * T.MAX_LINE_BYTES + b",1,1.0.0"
# Each physical line after the header, and its reject reason (None: accepted).
LINES = [
    (GOOD, None),
    (b"", "blank_line"),
    (b"   ", "blank_line"),
    (b"\t \x0b", "blank_line"),
    (b"\x00", "nul_only_line"),
    (b"\x00\x00\x00", "nul_only_line"),
    (b" \x00 ", "blank_line"),  # what Spark's CSV reader would skip: not NULs only
    (b"u2,2023-07-01 14:30:15,\xff\xfeedit,p1,1,1.0.0", "invalid_utf8"),
    (b"u3,2023-07-01 14:30:15,edit,p1,1,1.0.0\xc3", "invalid_utf8"),  # cut inside a character
    (b"\xed\xa0\x80", "invalid_utf8"),  # a surrogate
    ("u4,2023-07-01 14:30:15,\ufffd,p1,1,1.0.0".encode(), None),  # a real U+FFFD is valid UTF-8
    (LONG_LINE, "line_too_long"),
    (b"u5,2023-07-01 14:30:15,edit," + b"p" * (T.MAX_LINE_BYTES - 50) + b",1,1.0.0", None),  # long, not too long
    (b"u6," + b"," * 30_000, "wrong_column_count"),  # more columns than the parser's default maximum
    (b"u7,2023-07-01 14:30:15,edit,p1,1", "wrong_column_count"),
    (b"u8,2023-07-01 14:30:15,edit,p1,-1,1.0.0", "bad_duration_ms"),
    (GOOD, None),
]


def _raw(line: bytes, reason: str | None) -> str:
    """What bronze.rejected_rows keeps of a line the LINE_REASONS or the column count reject."""
    if reason == "invalid_utf8":
        return base64.b64encode(line).decode()
    return line.decode()


def _physical_lines(path) -> int:
    # bytes.splitlines splits where Hadoop's line reader does: \n, \r and \r\n.
    return sum(len(p.read_bytes().removeprefix(b"\xef\xbb\xbf").splitlines()) for p in Path(path).rglob("*.csv"))


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
@pytest.mark.parametrize("way", ["text", "reader", "job"])
def test_every_line_but_the_header_is_accepted_or_rejected_with_its_reason(spark, tmp_path, way, ending):
    from spark_jobs.common import DateRange
    from spark_jobs.landing import read_landing

    path = _landing(tmp_path, {"a.csv": ending.join([HEADER.encode(), *[line for line, _ in LINES]]) + ending})
    if way == "text":
        classified = _by_text(spark, path)
    elif way == "reader":
        classified = T.classify_interactions(read_landing(spark, path, T.INTERACTION_FIELDS, DateRange()))
    else:
        from spark_jobs.ingest import classify_landing_interactions

        classified = classify_landing_interactions(spark, path, DateRange())[0]
    rejected = T.rejected_interactions(classified, "r").select("raw", "reason").collect()
    wanted = [(r, _raw(line, r)) for line, r in LINES if r and r != "bad_duration_ms"]
    assert sorted((r.reason, r.raw) for r in rejected if r.reason != "bad_duration_ms") == sorted(wanted)
    assert sorted(r.reason for r in rejected) == sorted(r for _, r in LINES if r)
    accepted = T.accepted_interactions(classified).select("user_id").collect()
    assert sorted(r.user_id for r in accepted) == ["u1", "u1", "u4", "u5"]
    assert len(accepted) + len(rejected) == classified.count() == _physical_lines(path) - 1 == len(LINES)


@pytest.mark.parametrize("repeated_header", [False, True])
def test_the_text_path_and_the_reader_agree_line_by_line(spark, tmp_path, repeated_header):
    # Not the line of 30,000 commas: Spark's CSV reader, which _both_ways also compares, fails on it.
    lines = [line for line, _ in LINES if not line.startswith(b"u6,")]
    path = _landing(tmp_path, {
        "a.csv": b"\n".join([b"", b"\x00", HEADER.encode(), *lines, *[HEADER.encode()] * repeated_header]),
        "b.csv": b"\r\n".join([HEADER.encode(), *lines[:8]]), "c.csv": b" \n\x00\n"})
    classified, _ = _both_ways(spark, path)
    # Two lines before a.csv's header and all of c.csv (no header) are rows.
    assert classified.count() == _physical_lines(path) - 2 == 2 + len(lines) + repeated_header + 8 + 2
    assert sorted(r.reject_reason for r in classified.where("source_file LIKE '%c.csv'").collect()) == [
        "blank_line", "nul_only_line"]


def test_line_reject_checks_the_bytes_in_order(spark):
    lines = [b"ok", b"", b"\x00", b"\x00" * (T.MAX_LINE_BYTES + 1), b"\xff" * (T.MAX_LINE_BYTES + 1),
             b"a" * T.MAX_LINE_BYTES, b"\xc0\x80", b"\xf4\x90\x80\x80", "\u00e9\U0001f600".encode(), b"\x01\x1f "]
    df = spark.createDataFrame([(bytearray(b),) for b in lines], "b binary").select(F.col("b").cast("string").alias("line"))
    got = df.select(T.line_reject(F.col("line")).alias("reason"), T.raw_line(F.col("line")).alias("raw")).collect()
    assert [r.reason for r in got] == [None, "blank_line", "nul_only_line", "line_too_long", "invalid_utf8", None,
                                       "invalid_utf8", "invalid_utf8", None, "blank_line"]
    for line, r in zip(lines, got):
        assert (base64.b64decode(r.raw) if r.reason == "invalid_utf8" else r.raw.encode()) == line


def test_metadata_lines_get_the_same_reasons(spark, tmp_path):
    from spark_jobs.common import DateRange
    from spark_jobs.landing import read_landing

    header = ",".join(T.METADATA_FIELDS).encode()
    path = _landing(tmp_path, {"m.csv": b"\n".join([header, b"u1,2022-01-15,US,iPad,free", b"", b"\x00\x00",
                                                    b"u2,2022-01-15,US,\xe9,free", b"u3,2022-01-15,US,iPad",
                                                    b"u4,2022-01-15,US,iPad,free," + b"x" * T.MAX_LINE_BYTES])})
    classified = T.classify_metadata(read_landing(spark, path, T.METADATA_FIELDS, DateRange()))
    assert [r.user_id for r in T.accepted_metadata(classified).collect()] == ["u1"]
    assert sorted((r.reason, r.raw) for r in T.rejected_metadata(classified, "r").collect()) == [
        ("blank_line", ""), ("invalid_utf8", base64.b64encode(b"u2,2022-01-15,US,\xe9,free").decode()),
        ("line_too_long", "u4,2022-01-15,US,iPad,free," + "x" * T.MAX_LINE_BYTES),
        ("nul_only_line", "\x00\x00"), ("wrong_column_count", "u3,2022-01-15,US,iPad")]
    assert set(T.LINE_REASONS) < set(T.METADATA_REASONS) and set(T.LINE_REASONS) < set(T.INTERACTION_REASONS)


def test_fields_from_folder_names_and_blank_lines_in_country_folders(spark, tmp_path):
    from spark_jobs.common import DateRange
    from spark_jobs.landing import read_landing

    (tmp_path / "country=US").mkdir()
    header = b"user_id,join_date,device_type,subscription_type"
    path = _landing(tmp_path, {"country=US/m.csv": b"\n".join([header, b"u1,2022-01-15,iPad,free", b"   ", header,
                                                               b"u2,2022-01-15,iPad"])})
    classified = T.classify_metadata(read_landing(spark, path, T.METADATA_FIELDS, DateRange()))
    assert [(r.user_id, r.country) for r in T.accepted_metadata(classified).collect()] == [("u1", "US")]
    assert sorted(r.reason for r in T.rejected_metadata(classified, "r").collect()) == [
        "bad_join_date", "blank_line", "wrong_column_count"]  # the second header is a row


def test_parquet_landing_has_no_line_reasons(spark, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from spark_jobs.common import DateRange
    from spark_jobs.landing import read_landing

    values = [["u1", "2023-07-01 14:30:15", "edit", "p1", "1", "1.0.0"], ["", "2023-07-01 14:30:15", "edit", "p1", "1", "1.0.0"]]
    pq.write_table(pa.table({f: [v[i] for v in values] for i, f in enumerate(T.INTERACTION_FIELDS)}),
                   tmp_path / "a.parquet")
    classified = T.classify_interactions(read_landing(spark, str(tmp_path), T.INTERACTION_FIELDS, DateRange()))
    assert sorted(((r.user_id, r.reject_reason) for r in classified.collect()), key=str) == [
        ("", "empty_user_id"), ("u1", None)]


def test_the_rejected_rows_suite_knows_every_reason():
    suite = json.loads((Path(__file__).resolve().parents[2] / "expectations" / "bronze.rejected_rows.json").read_text())
    (in_set,) = [e for e in suite["expectations"] if e["type"] == "expect_column_values_to_be_in_set"]
    assert in_set["kwargs"]["column"] == "reason"
    from spark_jobs.transforms import lastfm

    assert set(in_set["kwargs"]["value_set"]) == (set(T.INTERACTION_REASONS) | set(T.METADATA_REASONS)
                                                  | set(lastfm.REASONS))


def test_generated_malformed_lines_are_rejected_with_their_reasons(spark, tmp_path):
    import collections
    import subprocess
    import sys

    from spark_jobs.common import DateRange
    from spark_jobs.landing import read_landing

    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-m", "datagen", "--out", str(tmp_path), "--mode", "realistic",
                    "--events", "3000", "--users", "200", "--days", "3", "--seed", "3", "--malformed-share", "0.05",
                    "--malformed-lines"], check=True, cwd=root)
    manifest = json.loads((tmp_path / "_manifest.json").read_text())
    as_reason = {"too_few_columns": "wrong_column_count", "too_many_columns": "wrong_column_count",
                 "negative_duration": "bad_duration_ms", "non_integer_duration": "bad_duration_ms"}

    def wanted(dataset):
        counts = collections.Counter()
        for kind, n in manifest[dataset]["malformed"].items():
            counts[as_reason.get(kind, kind)] += n
        return {r: n for r, n in counts.items() if n}

    interactions = str(tmp_path / "user_interactions")
    for classified in (_by_text(spark, interactions),
                       T.classify_interactions(read_landing(spark, interactions, T.INTERACTION_FIELDS, DateRange()))):
        got = {r.reason: r["count"] for r in T.rejected_interactions(classified, "r").groupBy("reason").count().collect()}
        assert got == wanted("user_interactions")
        assert classified.count() == _physical_lines(interactions) - 1 == manifest["user_interactions"]["rows"]
    meta = T.classify_metadata(read_landing(spark, str(tmp_path / "user_metadata"), T.METADATA_FIELDS, DateRange()))
    got = {r.reason: r["count"] for r in T.rejected_metadata(meta, "r").groupBy("reason").count().collect()}
    assert got == wanted("user_metadata")
