"""bench/duckdb_lastfm.py, the DuckDB reading of the LastFM-1K contract: tiny TSV
files written here with their expected rows written out by hand (session gaps of
exactly 1200 s and 1201 s, equal timestamps, ties, byte order, malformed lines),
and, on a generated file, agreement with a line-by-line Python reading of the
contract. No Spark."""
from __future__ import annotations

import collections
import datetime as dt
import hashlib
import re
from pathlib import Path

import duckdb
import pytest

from bench.duckdb_lastfm import REASONS, lastfm_tables

NO_REJECTS = dict.fromkeys(REASONS, 0)


def tsv(path: Path, rows: list, newline_at_end: bool = True) -> Path:
    """Rows are 6-tuples (user, timestamp, artist_id, artist, track_id, track) or raw line strings."""
    lines = [r if isinstance(r, str) else "\t".join(r) for r in rows]
    path.write_bytes(("\n".join(lines) + ("\n" if newline_at_end else "")).encode("utf-8"))
    return path


def play(user: str, ts: str, artist: str, track: str, artist_id: str = "", track_id: str = "") -> tuple:
    return (user, ts, artist_id, artist, track_id, track)


def sid(user: str, start: str) -> str:
    return hashlib.sha256(f"{user}|{start}".encode()).hexdigest()[:32]


def t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


AID = "a74b1b7f-71a5-4011-9441-d0b5e4122711"
TID = "db16d0b3-b8ce-4aa8-a2be-ff4d7a9e3d6b"


# --- sessions: the 1200 s edge, equal timestamps, duplicates -------------------------------

def test_gap_of_exactly_1200s_continues_a_session_and_1201s_starts_one(tmp_path):
    f = tsv(tmp_path / "gaps.tsv", [          # newest first, as in the dump
        play("user_000001", "2009-01-01T11:00:01Z", "C", "s6"),   # same second as s5: ties at both ends
        play("user_000001", "2009-01-01T11:00:01Z", "A", "s5"),   # +1200 -> same session
        play("user_000001", "2009-01-01T10:40:01Z", "B", "s4"),   # same second as s3, other song
        play("user_000001", "2009-01-01T10:40:01Z", "A", "s3"),   # +1201 -> new session
        play("user_000001", "2009-01-01T10:20:00Z", "A", "s2"),   # +1200 -> same session
        play("user_000001", "2009-01-01T10:00:00Z", "A", "s1"),
    ])
    out = lastfm_tables(f)
    assert out["top_sessions"] == [
        (1, sid("user_000001", "2009-01-01 10:40:01"), "user_000001", t("2009-01-01 10:40:01"), t("2009-01-01 11:00:01"), 4),
        (2, sid("user_000001", "2009-01-01 10:00:00"), "user_000001", t("2009-01-01 10:00:00"), t("2009-01-01 10:20:00"), 2),
    ]
    assert out["rows_read"] == 6 and out["accepted"] == 6 and out["rejected_by_reason"] == NO_REJECTS


def test_the_gap_is_a_parameter(tmp_path):
    f = tsv(tmp_path / "gaps.tsv", [
        play("user_000001", "2009-01-01T10:01:01Z", "A", "s3"),
        play("user_000001", "2009-01-01T10:00:01Z", "A", "s2"),   # 60 s: same with a 60 s gap
        play("user_000001", "2009-01-01T09:59:00Z", "A", "s1"),   # 61 s: new
    ])
    out = lastfm_tables(f, session_gap_seconds=60)
    assert [(r[3], r[5]) for r in out["top_sessions"]] == [(t("2009-01-01 10:00:01"), 2), (t("2009-01-01 09:59:00"), 1)]
    assert [r[5] for r in lastfm_tables(f)["top_sessions"]] == [3]


def test_exact_duplicates_and_repeats_count_as_tracks(tmp_path):
    f = tsv(tmp_path / "dups.tsv", [
        play("user_000001", "2009-03-01T12:10:00Z", "A", "song"),
        play("user_000001", "2009-03-01T12:05:00Z", "A", "song"),   # a repeat of the song
        play("user_000001", "2009-03-01T12:00:00Z", "A", "song", AID, TID),
        play("user_000001", "2009-03-01T12:00:00Z", "A", "song", AID, TID),   # the exact same line
    ])
    out = lastfm_tables(f)
    assert out["top_sessions"] == [
        (1, sid("user_000001", "2009-03-01 12:00:00"), "user_000001", t("2009-03-01 12:00:00"), t("2009-03-01 12:10:00"), 4)]
    assert out["top_songs"] == [(1, "A", "song", 4)]


def test_plays_of_users_are_not_mixed_and_input_order_does_not_matter(tmp_path):
    f = tsv(tmp_path / "users.tsv", [       # not grouped by user, oldest first
        play("user_000002", "2009-01-01T10:00:00Z", "A", "x"),
        play("user_000001", "2009-01-01T10:10:00Z", "A", "x"),
        play("user_000002", "2009-01-01T10:20:00Z", "A", "x"),
        play("user_000001", "2009-01-01T10:30:00Z", "A", "x"),
        play("user_000002", "2009-01-01T10:40:01Z", "A", "x"),
    ])
    out = lastfm_tables(f)
    # user_000001: 10:10-10:30 (2); user_000002: 10:00-10:20 (2), then 10:40:01 alone (1201 s later)
    assert [(r[0], r[2], r[3], r[4], r[5]) for r in out["top_sessions"]] == [
        (1, "user_000002", t("2009-01-01 10:00:00"), t("2009-01-01 10:20:00"), 2),
        (2, "user_000001", t("2009-01-01 10:10:00"), t("2009-01-01 10:30:00"), 2),
        (3, "user_000002", t("2009-01-01 10:40:01"), t("2009-01-01 10:40:01"), 1),
    ]


# --- ranking: ties and the top-N parameters ---------------------------------------------

def session_tie_file(tmp_path: Path) -> Path:
    return tsv(tmp_path / "ties.tsv", [
        play("user_000001", "2009-01-01T09:05:00Z", "A", "x"),
        play("user_000001", "2009-01-01T09:00:00Z", "A", "x"),     # 2 tracks, starts 09:00
        play("user_000002", "2009-01-01T08:05:00Z", "A", "x"),
        play("user_000002", "2009-01-01T08:00:00Z", "A", "x"),     # 2 tracks, starts 08:00
        play("user_000003", "2009-01-02T00:10:00Z", "A", "x"),
        play("user_000003", "2009-01-02T00:05:00Z", "A", "x"),
        play("user_000003", "2009-01-02T00:00:00Z", "A", "x"),     # 3 tracks
        play("user_000003", "2008-12-31T23:00:00Z", "A", "x"),     # 1 track
        play("user_000010", "2009-01-01T08:05:00Z", "A", "x"),
        play("user_000010", "2009-01-01T08:00:00Z", "A", "x"),     # 2 tracks, starts 08:00 too
    ])


def test_session_ties_go_to_the_earlier_start_then_the_smaller_user_id(tmp_path):
    out = lastfm_tables(session_tie_file(tmp_path))
    assert [(r[0], r[2], r[3], r[5]) for r in out["top_sessions"]] == [
        (1, "user_000003", t("2009-01-02 00:00:00"), 3),
        (2, "user_000002", t("2009-01-01 08:00:00"), 2),
        (3, "user_000010", t("2009-01-01 08:00:00"), 2),
        (4, "user_000001", t("2009-01-01 09:00:00"), 2),
        (5, "user_000003", t("2008-12-31 23:00:00"), 1),
    ]
    assert [r[1] for r in out["top_sessions"]] == [
        sid("user_000003", "2009-01-02 00:00:00"), sid("user_000002", "2009-01-01 08:00:00"),
        sid("user_000010", "2009-01-01 08:00:00"), sid("user_000001", "2009-01-01 09:00:00"),
        sid("user_000003", "2008-12-31 23:00:00")]
    assert sid("user_000001", "2009-01-01 09:00:00") == "554b1bb2d84aa93c3e155ba6a634a13a"   # sha256sum, by hand


def test_top_sessions_smaller_than_the_candidates(tmp_path):
    out = lastfm_tables(session_tie_file(tmp_path), top_sessions=3)
    assert [(r[0], r[2], r[5]) for r in out["top_sessions"]] == [
        (1, "user_000003", 3), (2, "user_000002", 2), (3, "user_000010", 2)]
    # the songs are counted in those three sessions only: 3 + 2 + 2 plays
    assert out["top_songs"] == [(1, "A", "x", 7)]


def song_tie_file(tmp_path: Path) -> Path:
    """user_000001's session at 12:00 (20 plays) is the top one; the other sessions hold
    plays that a top_sessions=1 run must not count."""
    songs = ([("A1", "Intro")] * 3 + [("A2", "Intro")]
             + [("Zed", "x"), ("abc", "x"), ("\u00c9mile", "x"), ("E\u0301mile", "x"), ("abc", "B")] * 2
             + [("", "Nameless"), ("Nine Inch Nails", "Hurt"), ("Johnny Cash", "Hurt"), ("abc", "\u00e9")]
             + [("A2", "Intro")] * 2)
    assert len(songs) == 20
    start = dt.datetime(2009, 4, 1, 12, 0, 0)
    rows = [play("user_000001", (start + dt.timedelta(minutes=3 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"), a, s)
            for i, (a, s) in enumerate(songs)]
    rows += [play("user_000001", "2009-04-02T12:00:00Z", "Zed", "x")] * 5           # 1 session of 5, a day later
    rows += [play("user_000002", f"2009-04-01T12:{m:02d}:00Z", "abc", "x") for m in range(10)]   # 10 plays
    return tsv(tmp_path / "songs.tsv", sorted(rows, key=lambda r: (r[0], r[1]), reverse=True))


def test_song_ties_go_to_byte_order_of_artist_then_track(tmp_path):
    out = lastfm_tables(song_tie_file(tmp_path), top_sessions=1, top_songs=20)
    assert [r[2:] for r in out["top_sessions"]] == [
        ("user_000001", t("2009-04-01 12:00:00"), t("2009-04-01 12:57:00"), 20)]
    assert out["top_songs"] == [
        (1, "A1", "Intro", 3),
        (2, "A2", "Intro", 3),          # the same title by another artist is another song
        (3, "E\u0301mile", "x", 2),     # 'E' + combining accent: 0x45 ...
        (4, "Zed", "x", 2),             # 0x5A
        (5, "abc", "B", 2),             # 0x61, then the track: 'B' 0x42 < 'x' 0x78
        (6, "abc", "x", 2),
        (7, "\u00c9mile", "x", 2),      # precomposed É: 0xC3 0x89, after all ASCII
        (8, "", "Nameless", 1),         # an empty artist_name is a name like any other
        (9, "Johnny Cash", "Hurt", 1),
        (10, "Nine Inch Nails", "Hurt", 1),
        (11, "abc", "\u00e9", 1),
    ]


def test_top_songs_smaller_than_the_candidates(tmp_path):
    out = lastfm_tables(song_tie_file(tmp_path), top_sessions=1, top_songs=4)
    assert out["top_songs"] == [(1, "A1", "Intro", 3), (2, "A2", "Intro", 3), (3, "E\u0301mile", "x", 2),
                                (4, "Zed", "x", 2)]
    # with every session: Zed/x 2 + 5, abc/x 2 + 10
    out = lastfm_tables(song_tie_file(tmp_path), top_songs=2)
    assert out["top_songs"] == [(1, "abc", "x", 12), (2, "Zed", "x", 7)]


def test_a_collation_on_the_callers_connection_does_not_change_the_order(tmp_path):
    con = duckdb.connect()
    con.execute("SET default_collation = 'nocase'")
    out = lastfm_tables(song_tie_file(tmp_path), top_sessions=1, top_songs=7, con=con)
    assert [r[1:3] for r in out["top_songs"]] == [
        ("A1", "Intro"), ("A2", "Intro"), ("E\u0301mile", "x"), ("Zed", "x"), ("abc", "B"), ("abc", "x"),
        ("\u00c9mile", "x")]
    assert con.execute("SELECT current_setting('default_collation')").fetchone()[0] == "nocase"


# --- reading: literal text, empty ids, malformed lines -------------------------------------

def test_fields_are_taken_literally_and_empty_ids_are_accepted(tmp_path):
    names = [('"Heroes"', 'He said "hi", then left'), ("Back\\Slash", "C:\\Music\\n"), ("O'Brien, Pat", "'Til"),
             ("東京事変", "夜空 🌙"), ("Sigur Rós", "Hoppípolla"), ('"', "'")]
    rows = [play("user_000001", f"2009-05-04T23:0{i}:57Z", a, s, artist_id=AID if i % 2 else "",
                 track_id="" if i % 3 else TID) for i, (a, s) in enumerate(names)]
    out = lastfm_tables(tsv(tmp_path / "literal.tsv", rows[::-1]))
    assert out["accepted"] == 6 and out["rejected_by_reason"] == NO_REJECTS
    assert sorted(r[1:] for r in out["top_songs"]) == sorted((a, s, 1) for a, s in names)
    assert [r[0] for r in out["top_songs"]] == [1, 2, 3, 4, 5, 6]


MALFORMED = [
    ("user_000001\t2009-05-04T23:08:57Z\t\tA\tx", "wrong_column_count"),                 # 5 fields
    ("user_000001\t2009-05-04T23:08:57Z\t\tA\t\tx\t(Live)", "wrong_column_count"),       # 7 fields
    ("", "wrong_column_count"),                                                         # a blank line
    ("\t2009-05-04T23:08:57Z\t\tA", "wrong_column_count"),                              # 4 fields, empty user too
    ("\t2009-05-04T23:08:57Z\t\tA\t\tx", "empty_user_id"),
    ("\tyesterday\t\tA\t\t", "empty_user_id"),                                          # every check fails
    ("user_000001\t2009-13-45T99:00:00Z\t\tA\t\tx", "bad_timestamp"),
    ("user_000001\t2009-05-04 23:08:57\t\tA\t\tx", "bad_timestamp"),
    ("user_000001\tyesterday\t\tA\t\tx", "bad_timestamp"),
    ("user_000001\t2009-05-04T23:08:57\t\tA\t\tx", "bad_timestamp"),                    # no Z
    ("user_000001\t2009-02-29T12:00:00Z\t\tA\t\tx", "bad_timestamp"),                   # 2009 is not a leap year
    ("user_000001\t2009-05-04T24:00:00Z\t\tA\t\tx", "bad_timestamp"),
    ("user_000001\t2009-05-04T23:59:60Z\t\tA\t\tx", "bad_timestamp"),
    ("user_000001\t 2009-05-04T23:08:57Z\t\tA\t\tx", "bad_timestamp"),                  # a leading space
    ("user_000001\t2009-5-4T23:08:57Z\t\tA\t\tx", "bad_timestamp"),
    ("user_000001\t2009-05-04T23:08:57+00:00\t\tA\t\tx", "bad_timestamp"),
    ("user_000001\t1241478537\t\tA\t\tx", "bad_timestamp"),
    ("user_000001\t\t\tA\t\tx", "bad_timestamp"),
    ("user_000001\t2009-05-04T23:08:57Z\t\tA\t\t", "empty_track_name"),
    ("user_000001\tnot a time\t\tA\t\t", "bad_timestamp"),                              # bad time and no track
]


def test_each_malformed_kind_is_rejected_with_its_reason(tmp_path):
    good = [play("user_000001", "2009-05-04T23:30:00Z", "A", "x"),        # 1500 s after the play below:
            play("user_000001", "2009-05-04T23:05:00Z", "A", "x")]        # two sessions
    f = tsv(tmp_path / "bad.tsv", [good[0]] + [line for line, _ in MALFORMED] + [good[1]], newline_at_end=False)
    out = lastfm_tables(f)
    expected = collections.Counter(reason for _, reason in MALFORMED)
    assert out["rejected_by_reason"] == {r: expected[r] for r in REASONS}
    assert out["accepted"] == 2 and out["rows_read"] == len(MALFORMED) + 2
    # rejected lines (several at 23:08:57, between the two plays) do not join the sessions
    assert [(r[3], r[5]) for r in out["top_sessions"]] == [(t("2009-05-04 23:05:00"), 1), (t("2009-05-04 23:30:00"), 1)]


def test_a_carriage_return_fails_the_read_rather_than_splitting_a_line(tmp_path):
    f = tmp_path / "cr.tsv"
    f.write_bytes(b"user_000001\t2009-05-04T23:08:57Z\t\tA\t\tx\r\n")
    with pytest.raises(duckdb.Error):
        lastfm_tables(f)


# --- on a generated file: a line-by-line Python reading of the contract agrees ------------

TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", re.ASCII)


def python_reading(path: Path, gap: int = 1200, top_sessions: int = 50, top_songs: int = 10) -> dict:
    rejected, plays = collections.Counter(), collections.defaultdict(list)
    with open(path, "rb") as fh:
        for raw in fh:
            f = raw.decode("utf-8").removesuffix("\n").split("\t")
            if len(f) != 6:
                rejected["wrong_column_count"] += 1
                continue
            if not f[0]:
                rejected["empty_user_id"] += 1
                continue
            try:
                assert TIMESTAMP.fullmatch(f[1])
                ts = dt.datetime.strptime(f[1], "%Y-%m-%dT%H:%M:%SZ")
            except (AssertionError, ValueError):
                rejected["bad_timestamp"] += 1
                continue
            if not f[5]:
                rejected["empty_track_name"] += 1
                continue
            plays[f[0]].append((ts, f[3], f[5]))
    sessions = []
    for user, rows in plays.items():
        rows.sort(key=lambda r: (r[0], r[1].encode(), r[2].encode()))
        current = [rows[0]]
        for prev, row in zip(rows, rows[1:]):
            if (row[0] - prev[0]).total_seconds() > gap:
                sessions.append((user, current))
                current = []
            current.append(row)
        sessions.append((user, current))
    sessions.sort(key=lambda s: (-len(s[1]), s[1][0][0], s[0].encode()))
    top = sessions[:top_sessions]
    songs = collections.Counter((a, s) for _, rows in top for _, a, s in rows)
    ranked = sorted(songs.items(), key=lambda kv: (-kv[1], kv[0][0].encode(), kv[0][1].encode()))[:top_songs]
    accepted = sum(len(r) for r in plays.values())
    return {
        "top_sessions": [(i, sid(u, rows[0][0].strftime("%Y-%m-%d %H:%M:%S")), u, rows[0][0], rows[-1][0], len(rows))
                         for i, (u, rows) in enumerate(top, 1)],
        "top_songs": [(i, a, s, n) for i, ((a, s), n) in enumerate(ranked, 1)],
        "rows_read": accepted + sum(rejected.values()), "accepted": accepted,
        "rejected_by_reason": {r: rejected[r] for r in REASONS},
    }


def test_agrees_with_a_python_reading_on_a_generated_file(tmp_path):
    from datagen.lastfm import main as generate

    f = tmp_path / "gen.tsv"
    generate(["--out", str(f), "--plays", "30000", "--users", "40", "--seed", "3", "--malformed-share", "0.01"])
    for args in [{}, {"top_sessions": 7, "top_songs": 25}, {"session_gap_seconds": 600}]:
        assert lastfm_tables(f, **args) == python_reading(f, *[args.get(k, d) for k, d in [
            ("session_gap_seconds", 1200), ("top_sessions", 50), ("top_songs", 10)]])
