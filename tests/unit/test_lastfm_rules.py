"""The LastFM rules of docs/tables.md on hand-written plays, with the rows expected written out."""
import datetime as dt
import hashlib

from pyspark.sql import functions as F

from spark_jobs.transforms import lastfm as T
from tests.assertions import assert_rows

TS = dt.datetime
PLAYS = "user_id string, played_at timestamp, artist_name string, track_name string"


def sid(user: str, start: str) -> str:
    return hashlib.sha256(f"{user}|{start}".encode()).hexdigest()[:32]


def test_lines_are_typed_or_rejected_with_the_first_reason(spark, tmp_path):
    lines = [
        "user_000001\t2009-05-04T23:08:57Z\ta1\tDeep Dish\tt1\tFuck Me Im Famous (Pacha Ibiza)",
        'user_000001\t2009-05-04T13:54:10Z\t\tA "quoted", artist\\\t\tÉmile\'s song',  # ids empty, quotes kept
        "user_000002\t2009-05-04T23:08:57Z\ta1\tDeep Dish\tt1",                  # 5 columns
        "user_000002\t2009-05-04T23:08:57Z\ta1\tDeep Dish\tt1\tx\textra",        # 7 columns
        "",                                                                       # 1 column
        "\t2009-05-04T23:08:57Z\ta1\tDeep Dish\tt1\tx",
        "user_000003\t2009-05-04 23:08:57\ta1\tDeep Dish\tt1\tx",
        "user_000003\t2009-02-29T00:00:00Z\ta1\tDeep Dish\tt1\tx",              # no such day
        "user_000003\tyesterday\ta1\tDeep Dish\tt1\t",                           # timestamp checked first
        "user_000003\t2008-02-29T00:00:00Z\ta1\t\tt1\t",                         # leap day; empty track name
        "user_000003\t2008-12-31T23:59:60Z\ta1\tA\tt1\tx",                      # leap second: not a time
        "user_000003\t2009-05-04T24:00:00Z\ta1\tA\tt1\tx",
        "user_000003\t0000-01-01T00:00:00Z\ta1\tA\tt1\tx",                      # no year 0
        "user_000003\t2009-04-31T10:00:00Z\ta1\tA\tt1\tx",                      # no such day
        "user_000005\t2009-01-31T10:00:00Z\ta1\tA\tt1\tx",
    ]
    path = tmp_path / "plays.tsv"
    path.write_bytes(("\n".join(lines) + "\n").encode() + b"user_000004\t2009-05-04T23:08:57Z\t\t\xff\xfe\t\tx\n")
    read = spark.read.text(str(path)).select(F.col("value").alias("line"), F.lit("f").alias("source_file"))
    classified = T.classify_plays(read).cache()
    assert_rows(T.accepted_plays(classified).drop("source_file"), ["user_id", "played_at", "play_date", "artist_id", "artist_name",
                                                "track_id", "track_name"], [
        ("user_000001", TS(2009, 5, 4, 23, 8, 57), dt.date(2009, 5, 4), "a1", "Deep Dish", "t1",
         "Fuck Me Im Famous (Pacha Ibiza)"),
        ("user_000001", TS(2009, 5, 4, 13, 54, 10), dt.date(2009, 5, 4), None, 'A "quoted", artist\\', None,
         "Émile's song"),
        ("user_000005", TS(2009, 1, 31, 10, 0, 0), dt.date(2009, 1, 31), "a1", "A", "t1", "x"),
    ])
    # The rejects pass classifies only the lines the pattern cannot vouch for: every rejected one.
    candidates = T.classify_plays(T.possibly_rejected(read))
    assert sorted(r.line for r in candidates.collect()) == sorted(
        r.line for r in classified.where("reject_reason IS NOT NULL").collect())
    assert_rows(T.rejected_plays(classified, "r1").drop("source_file"), ["dataset", "event_date", "raw", "reason", "run_id"], [
        ("lastfm_plays", dt.date(2009, 5, 4), lines[2], "wrong_column_count", "r1"),
        ("lastfm_plays", dt.date(2009, 5, 4), lines[3], "wrong_column_count", "r1"),
        ("lastfm_plays", None, "", "wrong_column_count", "r1"),
        ("lastfm_plays", dt.date(2009, 5, 4), lines[5], "empty_user_id", "r1"),
        ("lastfm_plays", None, lines[6], "bad_timestamp", "r1"),
        ("lastfm_plays", None, lines[7], "bad_timestamp", "r1"),
        ("lastfm_plays", None, lines[8], "bad_timestamp", "r1"),
        ("lastfm_plays", dt.date(2008, 2, 29), lines[9], "empty_track_name", "r1"),
        ("lastfm_plays", None, lines[10], "bad_timestamp", "r1"),
        ("lastfm_plays", None, lines[11], "bad_timestamp", "r1"),
        ("lastfm_plays", None, lines[12], "bad_timestamp", "r1"),
        ("lastfm_plays", None, lines[13], "bad_timestamp", "r1"),
        # Not UTF-8: the bytes kept, as base64.
        ("lastfm_plays", dt.date(2009, 5, 4), "dXNlcl8wMDAwMDQJMjAwOS0wNS0wNFQyMzowODo1N1oJCf/+CQl4", "invalid_utf8",
         "r1"),
    ])


def _plays(spark):
    t0 = TS(2009, 1, 1, 12, 0, 0)
    s = lambda seconds: t0 + dt.timedelta(seconds=seconds)  # noqa: E731
    return spark.createDataFrame([
        # user_000002: one session of 4 plays (gaps of exactly 1200 s continue it), then one of 2.
        ("user_000002", s(0), "Zed", "Intro"),
        ("user_000002", s(1200), "abc", "Intro"),
        ("user_000002", s(2400), "Zed", "Intro"),
        ("user_000002", s(2400), "Émile", "Song"),      # same time: ordered by artist, then track
        ("user_000002", s(3601 + 2400), "abc", "Intro"),  # 3601 s after the last: a new session
        ("user_000002", s(3601 + 2400 + 1200), "abc", "Intro"),
        # user_000001: a gap of 1201 s splits 5 plays into 3 + 2; the 3 ties user_000003's 3, at the same start.
        ("user_000001", s(100), "abc", "Outro"),
        ("user_000001", s(200), "abc", "Outro"),
        ("user_000001", s(300), "Zed", "Intro"),
        ("user_000001", s(300 + 1201), "Émile", "Song"),
        ("user_000001", s(300 + 1201 + 60), "Émile", "Song"),
        # user_000003: 3 plays starting at the same time as user_000001's 3: the smaller user_id wins.
        ("user_000003", s(100), "Zed", "Intro"),
        ("user_000003", s(110), "Zed", "Intro"),
        ("user_000003", s(120), "abc", "Intro"),
    ], PLAYS)


def test_sessions_cut_at_more_than_the_gap(spark):
    assert_rows(T.sessions(_plays(spark)), ["user_id", "session_start", "session_end", "tracks"], [
        ("user_000001", TS(2009, 1, 1, 12, 1, 40), TS(2009, 1, 1, 12, 5), 3),
        ("user_000001", TS(2009, 1, 1, 12, 25, 1), TS(2009, 1, 1, 12, 26, 1), 2),
        ("user_000002", TS(2009, 1, 1, 12, 0), TS(2009, 1, 1, 12, 40), 4),
        ("user_000002", TS(2009, 1, 1, 13, 40, 1), TS(2009, 1, 1, 14, 0, 1), 2),
        ("user_000003", TS(2009, 1, 1, 12, 1, 40), TS(2009, 1, 1, 12, 2), 3),
    ])
    # A gap parameter of 1201 s joins user_000001's two sessions.
    longer = T.sessions(_plays(spark), gap_seconds=1201).where("user_id = 'user_000001'")
    assert [r.tracks for r in longer.collect()] == [5]


def test_top_sessions_break_ties_by_start_then_user(spark):
    top = T.top_sessions(T.sessions(_plays(spark)), 3)
    assert_rows(top, ["rank", "session_id", "user_id", "session_start", "session_end", "tracks"], [
        (1, sid("user_000002", "2009-01-01 12:00:00"), "user_000002", TS(2009, 1, 1, 12, 0), TS(2009, 1, 1, 12, 40), 4),
        (2, sid("user_000001", "2009-01-01 12:01:40"), "user_000001", TS(2009, 1, 1, 12, 1, 40), TS(2009, 1, 1, 12, 5), 3),
        (3, sid("user_000003", "2009-01-01 12:01:40"), "user_000003", TS(2009, 1, 1, 12, 1, 40), TS(2009, 1, 1, 12, 2), 3),
    ])


def test_top_songs_count_plays_in_the_top_sessions_ties_in_byte_order(spark):
    plays = _plays(spark)
    top = T.top_sessions(T.sessions(plays), 3)
    # In the three sessions: (Zed, Intro) 2 + 1 + 2 = 5; (abc, Intro) 1 + 1 = 2; (abc, Outro) 2;
    # (Émile, Song) 1. The two songs "Intro" are two songs. Ties of 2: "abc" before "abc"/"Outro".
    assert_rows(T.top_songs(plays, top, 10), ["rank", "artist_name", "track_name", "plays"], [
        (1, "Zed", "Intro", 5),
        (2, "abc", "Intro", 2),
        (3, "abc", "Outro", 2),
        (4, "Émile", "Song", 1),
    ])
    assert_rows(T.top_songs(plays, top, 2), ["rank", "artist_name", "track_name", "plays"], [
        (1, "Zed", "Intro", 5), (2, "abc", "Intro", 2)])


def test_songs_tied_in_plays_go_in_byte_order(spark):
    # One session, each song played once: uppercase ASCII < lowercase ASCII < non-ASCII, artist first.
    t0 = TS(2009, 1, 1)
    songs = [("Émile", "a"), ("abc", "a"), ("Zed", "a"), ("Zed", "B"), ("abc", "Émile")]
    plays = spark.createDataFrame([("user_000001", t0 + dt.timedelta(minutes=i), a, t)
                                   for i, (a, t) in enumerate(songs)], PLAYS)
    assert_rows(T.top_songs(plays, T.top_sessions(T.sessions(plays), 1), 4),
                ["rank", "artist_name", "track_name", "plays"], [
        (1, "Zed", "B", 1), (2, "Zed", "a", 1), (3, "abc", "a", 1), (4, "abc", "Émile", 1)])


def test_duplicate_plays_are_marked_after_their_first(spark):
    t = TS(2009, 1, 1, 12)
    plays = spark.createDataFrame([
        ("u1", t, "A", "x"), ("u1", t, "A", "x"), ("u1", t, "A", "x"),  # two duplicates
        ("u1", t, "A", "y"), ("u2", t, "A", "x"),                        # another song; another user
        ("u1", t + dt.timedelta(seconds=1), "A", "x"),                   # another time
    ], PLAYS).withColumn("play_date", F.to_date("played_at")).repartition(3, "play_date")
    marked = T.with_duplicate_marks(plays)
    assert sorted((r.user_id, r.track_name, r.is_duplicate) for r in marked.collect()) == [
        ("u1", "x", False), ("u1", "x", False), ("u1", "x", True), ("u1", "x", True), ("u1", "y", False),
        ("u2", "x", False)]
