"""LastFM listening sessions (docs/tables.md, LastFM): the dump's TSV lines in,
typed plays and rejected lines out; the longest sessions and their top songs.

Sessions are cut by the GoodNote sessionization (transforms.sessions.sessions_of)
with the LastFM gap and order."""
from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from spark_jobs.transforms.ingest import raw_line
from spark_jobs.transforms.sessions import session_id, sessions_of

DATASET = "lastfm_plays"
FIELDS = ["user_id", "timestamp", "artist_id", "artist_name", "track_id", "track_name"]
# Every reject reason, in the order the checks run: the first failing one is the line's.
REASONS = ("invalid_utf8", "wrong_column_count", "empty_user_id", "bad_timestamp", "empty_track_name")
DEFAULT_GAP_SECONDS = 1200


def classify_plays(lines: DataFrame) -> DataFrame:
    """Each ``line`` (with its ``source_file``) split into the typed play columns,
    and ``reject_reason``: NULL when the play is accepted."""
    split = F.split(F.col("line"), "\t", -1)
    fields = [F.get(split, i) for i in range(len(FIELDS))]  # NULL past a short line's end
    ts = fields[1]
    # A cast of the contract's one shape, its T and Z made a space and nothing, parses
    # exactly as the pattern yyyy-MM-dd'T'HH:mm:ss'Z' does (impossible dates are NULL),
    # at a fraction of the cost of a formatter. Year 0000 casts (proleptic Gregorian)
    # but is no play time.
    shaped = ts.rlike(r"^(?!0000)\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
    played_at = F.when(shaped, F.concat(ts.substr(1, 10), F.lit(" "), ts.substr(12, 8)).try_cast("timestamp"))
    valid_utf8 = F.is_valid_utf8(F.col("line"))
    checks: list[tuple[str, Column]] = [
        ("invalid_utf8", ~valid_utf8),
        ("wrong_column_count", F.size(split) != len(FIELDS)),
        ("empty_user_id", fields[0] == ""),
        ("bad_timestamp", played_at.isNull()),
        ("empty_track_name", fields[5] == ""),
    ]
    reason = F.lit(None).cast("string")
    for name, failed in reversed(checks):
        reason = F.when(failed, F.lit(name)).otherwise(reason)
    return lines.select(
        "line", "source_file",
        reason.alias("reject_reason"),
        fields[0].alias("user_id"),
        played_at.alias("played_at"),
        F.to_date(played_at).alias("play_date"),
        _absent_if_empty(fields[2]).alias("artist_id"),
        fields[3].alias("artist_name"),
        _absent_if_empty(fields[4]).alias("track_id"),
        fields[5].alias("track_name"),
    )


# A line of this shape is accepted unless its bytes are not UTF-8: six fields, user
# and track not empty, and a timestamp that is a real time (classify_plays). February 29
# is left to classify_plays, which knows leap years.
_REAL_DATE = (r"(?!0000)\d{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)"
              r"|(?:0[13578]|1[02])-31)")
_PLAIN_PLAY = rf"^[^\t]+\t{_REAL_DATE}T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\dZ\t[^\t]*\t[^\t]*\t[^\t]*\t[^\t]+$"


def possibly_rejected(lines: DataFrame) -> DataFrame:
    """The ``lines`` classify_plays may reject: every one it rejects, and few others."""
    return lines.where(~(F.is_valid_utf8(F.col("line")) & F.col("line").rlike(_PLAIN_PLAY)))


def with_duplicate_marks(plays: DataFrame) -> DataFrame:
    """``plays`` (partitioned so that a day is in one task) sorted by day, user, time
    and song, with ``is_duplicate``: the play before it in that order is the same
    user, time and song."""
    order = ["user_id", "played_at", "artist_name", "track_name"]
    previous = Window.partitionBy("play_date").orderBy(*order)
    same = [F.lag(c).over(previous) == F.col(c) for c in order]
    return plays.sortWithinPartitions("play_date", *order).withColumn(
        "is_duplicate", F.coalesce(same[0] & same[1] & same[2] & same[3], F.lit(False)))


def _absent_if_empty(mbid: Column) -> Column:
    """A MusicBrainz id: the dump leaves it empty when there is none."""
    return F.when(mbid != "", mbid)


def accepted_plays(classified: DataFrame) -> DataFrame:
    return classified.where(F.col("reject_reason").isNull()).select(
        "user_id", "played_at", "play_date", "artist_id", "artist_name", "track_id", "track_name", "source_file")


def rejected_plays(classified: DataFrame, run_id: str) -> DataFrame:
    """bronze.rejected_rows rows: the line as read, dated by its timestamp when it parses."""
    return classified.where(F.col("reject_reason").isNotNull()).select(
        F.lit(DATASET).alias("dataset"),
        F.col("play_date").alias("event_date"),
        "source_file",
        raw_line(F.col("line")).alias("raw"),
        F.col("reject_reason").alias("reason"),
        F.lit(run_id).alias("run_id"),
    )


def sessions(plays: DataFrame, gap_seconds: int = DEFAULT_GAP_SECONDS) -> DataFrame:
    """Every listening session: ``user_id, session_start, session_end, tracks``.

    Plays are ordered by time only: the contract's order among plays of the same
    time (artist, then track) moves no session's start, end or count, and
    leaving the names out keeps them out of the shuffle."""
    return (sessions_of(plays.select("user_id", "played_at"), gap_seconds, "played_at", [])
            .withColumnRenamed("events", "tracks"))


def top_sessions(all_sessions: DataFrame, n: int) -> DataFrame:
    """gold.lastfm_top_sessions: the ``n`` sessions with the most plays; ties to
    the earlier start, then the smaller user_id."""
    order = [F.col("tracks").desc(), F.col("session_start").asc(), F.col("user_id").asc()]
    top = all_sessions.orderBy(*order).limit(n)
    return top.select(
        F.row_number().over(Window.orderBy(*order)).alias("rank"),
        session_id(F.col("user_id"), F.col("session_start")).alias("session_id"),
        "user_id", "session_start", "session_end", "tracks",
    )


def top_songs(plays: DataFrame, kept_sessions: DataFrame, n: int) -> DataFrame:
    """gold.lastfm_top_songs: the ``n`` songs played most within ``kept_sessions``
    (gold.lastfm_top_sessions rows); ties to the smaller (artist, track) in byte order.

    A user's sessions never overlap in time (the next starts more than a gap after
    one ends), so a session's plays are its user's plays from its start to its end."""
    kept = F.broadcast(kept_sessions.select(F.col("user_id").alias("session_user"), "session_start", "session_end"))
    in_session = plays.join(kept, (F.col("user_id") == F.col("session_user"))
                            & F.col("played_at").between(F.col("session_start"), F.col("session_end")))
    counts = in_session.groupBy("artist_name", "track_name").agg(F.count(F.lit(1)).alias("plays"))
    order = [F.col("plays").desc(), F.col("artist_name").asc(), F.col("track_name").asc()]
    return counts.orderBy(*order).limit(n).select(
        F.row_number().over(Window.orderBy(*order)).alias("rank"), "artist_name", "track_name", "plays")
