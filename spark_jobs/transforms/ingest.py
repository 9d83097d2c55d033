"""Parsing and validation of landing rows: raw strings in, typed accepted rows
and rejected rows (with their reason) out. Every row read lands in exactly one
of the two, so accepted + rejected = rows read: for a CSV file, every physical
line but its header, blank and undecodable lines included (LINE_REASONS)."""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

INTERACTION_FIELDS = ["user_id", "timestamp", "action_type", "page_id", "duration_ms", "app_version"]
METADATA_FIELDS = ["user_id", "join_date", "country", "device_type", "subscription_type"]
CORRUPT = "_corrupt_record"  # the raw line, set by Spark's CSV parser when the column count is wrong
LINE_REJECT = "_line_reject"  # the line's reason when the line as a whole cannot be a row (LINE_REASONS), else NULL

TIMESTAMP_FORMAT = "yyyy-MM-dd HH:mm:ss"
DATE_FORMAT = "yyyy-MM-dd"

# A CSV line longer than this (in bytes, its line ending excluded) is rejected as
# `line_too_long` without being parsed: no row of the contract comes near it (a
# plain interaction line is under 100 bytes), and the CSV parser is not made to
# split arbitrarily large lines (it gives up at 20,480 columns).
MAX_LINE_BYTES = 64 * 1024
# Reasons a CSV line is rejected as a whole, before it is parsed, in the order
# they are checked (line_reject). A line that is not valid UTF-8 keeps its bytes
# in `raw` as base64 (raw_line); every other line keeps its text.
LINE_REASONS = ("invalid_utf8", "line_too_long", "nul_only_line", "blank_line")
_INTERACTION_ROW_REASONS = ("wrong_column_count", "empty_user_id", "bad_timestamp", "bad_duration_ms",
                            "bad_app_version")
_METADATA_ROW_REASONS = ("wrong_column_count", "empty_user_id", "bad_join_date")
# Every reject reason each classifier can give, in the order it checks them.
INTERACTION_REASONS = (*LINE_REASONS, *_INTERACTION_ROW_REASONS)
METADATA_REASONS = (*LINE_REASONS, *_METADATA_ROW_REASONS)


def csv_schema(fields: list[str]) -> str:
    """The string columns Spark's CSV parser reads, plus the raw line of a malformed row."""
    return ", ".join(f"`{f}` STRING" for f in fields) + f", `{CORRUPT}` STRING"


def _first_failure(reasons: tuple[str, ...], failed: tuple[Column, ...]) -> Column:
    """The reason of the first failing check, in the contract's order; NULL when all pass."""
    expr = F.lit(None).cast("string")
    for reason, check in reversed(list(zip(reasons, failed, strict=True))):
        expr = F.when(check, F.lit(reason)).otherwise(expr)
    return expr


def _raw(fields: list[str]) -> Column:
    """The raw line when the parser kept it, else a JSON object of the raw values."""
    return F.coalesce(F.col(CORRUPT), F.to_json(F.struct(*[F.col(f) for f in fields])))


def line_reject(line: Column) -> Column:
    """The LINE_REASONS reason of a physical CSV line, NULL for a line the CSV
    parser is to split. The line is the text source's value, its bytes as read:
    ``is_valid_utf8`` checks those bytes, so a line holding a real U+FFFD is
    valid. Blank is what Spark's CSV reader skips as blank (what Java's trim()
    empties: characters up to U+0020); a line of NULs only is told apart."""
    nul_only = line.rlike(r"^\x00+$")
    return (F.when(~F.is_valid_utf8(line), F.lit("invalid_utf8"))
            .when(F.octet_length(line) > MAX_LINE_BYTES, F.lit("line_too_long"))
            .when(line.rlike(r"^[\x00-\x20]*$"),
                  F.when(nul_only, F.lit("nul_only_line")).otherwise(F.lit("blank_line"))))


def raw_line(line: Column) -> Column:
    """The line as `raw` keeps it: its text, or, when it is not valid UTF-8, the
    base64 of its bytes (lossless, and a string any reader can hold; the reason
    `invalid_utf8` says which)."""
    return F.when(F.is_valid_utf8(line), line).otherwise(F.base64(line.cast("binary")))


def _line_reason(raw: DataFrame) -> Column:
    return F.col(LINE_REJECT) if LINE_REJECT in raw.columns else F.lit(None).cast("string")


def _without_line_reason(raw: DataFrame) -> list[str]:
    """The input columns a classifier passes on: all but LINE_REJECT, which its reason replaces."""
    return [c for c in raw.columns if c != LINE_REJECT]


def _is_empty(c: Column) -> Column:
    return c.isNull() | (c == "")


def classify_interactions(raw: DataFrame) -> DataFrame:
    """Adds ``reject_reason`` (NULL = accepted) and the typed columns.

    Input: the string fields of INTERACTION_FIELDS, ``_corrupt_record``,
    ``source_file`` and ``folder_date`` (the Hive ``date=`` folder, or NULL), and
    optionally ``_line_reject`` (parse_csv_lines), which comes first and is not
    passed on.
    """
    # The pattern check keeps the parser from accepting anything but the contract's shape.
    ts_shaped = F.col("timestamp").rlike(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
    # On that shape a cast parses exactly as the format does (impossible dates are NULL
    # either way: tests/unit/test_ingest.py) at a third of its cost; the
    # format parser only sees the few rows of another shape, to date them if it can.
    event_ts = F.when(ts_shaped, F.col("timestamp").try_cast("timestamp")).otherwise(
        F.try_to_timestamp(F.col("timestamp"), F.lit(TIMESTAMP_FORMAT)))
    ts_ok = ts_shaped & event_ts.isNotNull()
    duration = F.col("duration_ms").try_cast("bigint")
    duration_ok = F.col("duration_ms").rlike(r"^[0-9]+$") & duration.isNotNull()
    reason = F.coalesce(_line_reason(raw), _first_failure(_INTERACTION_ROW_REASONS, (
        F.col(CORRUPT).isNotNull(),
        _is_empty(F.col("user_id")),
        ~F.coalesce(ts_ok, F.lit(False)),
        ~F.coalesce(duration_ok, F.lit(False)),
        ~F.coalesce(F.col("app_version").rlike(r"^\d+\.\d+\.\d+$"), F.lit(False)),
    )))
    return raw.select(
        *_without_line_reason(raw),
        reason.alias("reject_reason"),
        event_ts.alias("event_ts"),
        F.to_date(event_ts).alias("event_date"),
        duration.alias("duration_ms_typed"),
    )


# A line of this shape is an accepted interaction whose fields are its comma-separated
# parts, exactly as Spark's CSV parser and classify_interactions take it: no character
# the CSV parser interprets (quote, escape, control characters), no empty field, a
# timestamp of the contract's shape on a day every year has (February 29 is left to
# the parser), and a duration that fits a bigint. A plain line is also valid UTF-8
# and at most MAX_LINE_BYTES long (_is_plain), as line_reject wants.
_PLAIN_FIELD = r'[^,"\\\x00-\x1f]+'
_MONTH_DAY = r"(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
PLAIN_INTERACTION_LINE = (
    rf"^{_PLAIN_FIELD},[1-9]\d{{3}}-{_MONTH_DAY} (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d,"
    rf"{_PLAIN_FIELD},{_PLAIN_FIELD},[0-9]{{1,18}},\d+\.\d+\.\d+$"
)


def plain_lines(lines: DataFrame, irregular: DataFrame | None = None) -> DataFrame:
    """The ``lines`` of PLAIN_INTERACTION_LINE. Given ``irregular``, what
    irregular_lines took from the same ``lines``, the others: each line is then
    looked up in a broadcast of them, which costs less than matching the pattern
    a second time, so ``irregular`` must be small."""
    if irregular is None:
        return lines.where(_is_plain(F.col("line")))
    # The pattern sees a line's text only: a text among the irregular lines is irregular wherever it occurs.
    return lines.join(F.broadcast(irregular.select("line")), "line", "left_anti")


def plain_interactions(plain: DataFrame) -> DataFrame:
    """What classify_interactions gives for ``plain`` lines (all accepted), without
    the CSV parser, whose cost it is to skip.

    Input: ``line``, ``source_file`` and ``folder_date`` of lines plain_lines took.
    """
    fields = F.split("line", ",")
    raw = plain.select(
        *[fields[i].alias(name) for i, name in enumerate(INTERACTION_FIELDS)],
        F.lit(None).cast("string").alias(CORRUPT), "source_file", "folder_date",
    )
    event_ts = F.col("timestamp").try_cast("timestamp")
    return raw.select(
        "*",
        F.lit(None).cast("string").alias("reject_reason"),
        event_ts.alias("event_ts"),
        F.to_date(event_ts).alias("event_date"),
        F.col("duration_ms").try_cast("bigint").alias("duration_ms_typed"),
    )


def _is_plain(line: Column) -> Column:
    # The cheap checks first (And stops at false): a string knows its byte length,
    # and checking its bytes are UTF-8 costs far less than the pattern. Only the
    # bytes tell: the pattern sees the line decoded, bytes that are not UTF-8 as
    # U+FFFD, and a pattern that refused U+FFFD would cost the match 2.5 times
    # as much (a class of characters that is no longer all below 256).
    return (F.octet_length(line) <= MAX_LINE_BYTES) & F.is_valid_utf8(line) & line.rlike(PLAIN_INTERACTION_LINE)


def irregular_lines(lines: DataFrame) -> DataFrame:
    """The lines plain_lines does not take, for the CSV parser."""
    return lines.where(~_is_plain(F.col("line")))


def parse_csv_lines(lines: DataFrame, fields: list[str], keep: tuple[str, ...] = ()) -> DataFrame:
    """Each ``line`` as a row: Spark's CSV parser gives the string ``fields`` and
    ``_corrupt_record`` as the CSV reader would; a line line_reject rejects is not
    parsed, and has NULL fields, its raw_line as ``_corrupt_record`` and its
    reason as ``_line_reject``. With ``source_file``, ``folder_date`` and the
    columns ``keep``. One row per line: nothing is dropped."""
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT,
               # A line of n bytes has at most n + 1 columns: the parser's default of
               # 20,480 would fail the task on a line of many commas.
               "maxColumns": str(MAX_LINE_BYTES + 1)}
    parsed = F.from_csv("line", csv_schema(fields), options)
    rejected = F.col(LINE_REJECT).isNotNull()
    return lines.select("line", line_reject(F.col("line")).alias(LINE_REJECT), *keep, "source_file",
                        "folder_date").select(
        F.when(~rejected, parsed).alias("row"), LINE_REJECT,
        F.when(rejected, raw_line(F.col("line"))).alias("raw_line"), *keep, "source_file", "folder_date",
    ).select(
        *[F.col("row")[f].alias(f) for f in fields],
        F.coalesce("raw_line", F.col("row")[CORRUPT]).alias(CORRUPT), LINE_REJECT, *keep, "source_file", "folder_date")


def accepted_interactions(classified: DataFrame) -> DataFrame:
    return classified.where(F.col("reject_reason").isNull()).select(
        "user_id", "event_ts", "event_date", "action_type", "page_id",
        F.col("duration_ms_typed").alias("duration_ms"), "app_version", "source_file",
    )


def rejected_interactions(classified: DataFrame, run_id: str) -> DataFrame:
    """Rejected rows are dated by their folder, else their timestamp when it parses."""
    return classified.where(F.col("reject_reason").isNotNull()).select(
        F.lit("user_interactions").alias("dataset"),
        F.coalesce(F.col("folder_date"), F.col("event_date")).alias("event_date"),
        "source_file",
        _raw(INTERACTION_FIELDS).alias("raw"),
        F.col("reject_reason").alias("reason"),
        F.lit(run_id).alias("run_id"),
    )


def classify_metadata(raw: DataFrame) -> DataFrame:
    """Adds ``reject_reason`` and the typed ``join_date_typed`` to raw metadata rows
    (the input as classify_interactions takes it, with METADATA_FIELDS)."""
    join_date = F.try_to_timestamp(F.col("join_date"), F.lit(DATE_FORMAT)).cast("date")
    join_ok = F.col("join_date").rlike(r"^\d{4}-\d{2}-\d{2}$") & join_date.isNotNull()
    reason = F.coalesce(_line_reason(raw), _first_failure(_METADATA_ROW_REASONS, (
        F.col(CORRUPT).isNotNull(),
        _is_empty(F.col("user_id")),
        ~F.coalesce(join_ok, F.lit(False)),
    )))
    return raw.select(*_without_line_reason(raw), reason.alias("reject_reason"), join_date.alias("join_date_typed"))


def accepted_metadata(classified: DataFrame) -> DataFrame:
    return classified.where(F.col("reject_reason").isNull()).select(
        "user_id", F.col("join_date_typed").alias("join_date"), "country", "device_type", "subscription_type",
        "source_file",
    )


def rejected_metadata(classified: DataFrame, run_id: str) -> DataFrame:
    return classified.where(F.col("reject_reason").isNotNull()).select(
        F.lit("user_metadata").alias("dataset"),
        F.lit(None).cast("date").alias("event_date"),
        "source_file",
        _raw(METADATA_FIELDS).alias("raw"),
        F.col("reject_reason").alias("reason"),
        F.lit(run_id).alias("run_id"),
    )
