"""An independent DuckDB implementation of the LastFM-1K contract (top sessions and
the top songs in them), written from the contract alone, not from the Spark jobs,
and timed as the single-machine baseline:

    python -m bench.duckdb_lastfm FILE [--session-gap-seconds 1200] [--top-sessions 50] [--top-songs 10]

Input: the dump's TSV (no header; user_id, timestamp, artist_id, artist_name,
track_id, track_name). A line is rejected, with the first failing reason in
this order, when
    wrong_column_count  it does not have exactly 6 tab-separated fields
    empty_user_id       user_id is empty
    bad_timestamp       timestamp is not exactly YYYY-MM-DDTHH:MM:SSZ, a real UTC
                        date and time (Feb 29 of a non-leap year, hour 24,
                        second 60 and year 0000 are not)
    empty_track_name    track_name is empty
accepted + rejected = lines read.

A song is (artist_name, track_name) byte for byte. A user's plays in
(played_at, artist_name, track_name) order form sessions: a new one at the first
play and at every play more than session_gap_seconds after the previous play.
gold.lastfm_top_sessions: the top_sessions sessions with the most plays (ties:
earlier session_start, then smaller user_id), session_id = first 32 hex
characters of sha256(user_id || '|' || session_start as '%Y-%m-%d %H:%M:%S').
gold.lastfm_top_songs: the top_songs songs with the most plays inside those
sessions (ties: smaller artist_name, then track_name, in byte order).

How it reads: every line is one VARCHAR (read_csv with the unit separator
chr(31) as delimiter, no quote, no escape, no header, strict mode), split on
tabs in SQL, so quotes, backslashes and any UTF-8 are literal and a line with
the wrong number of tabs is counted and rejected, never dropped. A blank line
is one empty field: wrong_column_count. What the reader cannot take fails the
run loudly rather than miscounting: a carriage return anywhere (the format
has `\\n` endings only), a chr(31) in a line, a file that is not UTF-8.

Strings are compared byte for byte: DuckDB's default (empty) collation compares
VARCHARs with memcmp; the run sets default_collation to '' on its connection
(and puts back what a caller's connection had).

Sessions: which plays share a session depends only on each user's timestamps
(plays at the same second are 0 s apart, so never split), so the window that
finds session edges orders by (user_id, played_at) alone; the tie-break on
(artist_name, track_name) the contract gives cannot change any output table.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import duckdb

REASONS = ["wrong_column_count", "empty_user_id", "bad_timestamp", "empty_track_name"]
TIMESTAMP_PATTERN = "[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z"


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect(threads: int | None = None, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute("SET preserve_insertion_order = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = {sql_string(memory_limit)}")
    return con


def lastfm_tables(path: str | Path, session_gap_seconds: int = 1200, top_sessions: int = 50,
                  top_songs: int = 10, con: duckdb.DuckDBPyConnection | None = None) -> dict:
    """The contract's two tables and the read counts (see the module docstring)."""
    if not Path(path).is_file():
        raise FileNotFoundError(path)
    gap_us = int(session_gap_seconds) * 1_000_000
    own = con is None
    con = con or connect()
    collation = con.execute("SELECT current_setting('default_collation')").fetchone()[0]
    suffix = uuid.uuid4().hex[:12]
    plays, sessions = f"lastfm_plays_{suffix}", f"lastfm_top_sessions_{suffix}"
    try:
        con.execute("SET default_collation = ''")
        # one pass over the file: each line classified, accepted plays kept (rejects keep only their reason)
        con.execute(f"""
            CREATE TEMP TABLE {plays} AS
            WITH lines AS (
                SELECT string_split(coalesce(line, ''), chr(9)) AS f
                FROM read_csv({sql_string(str(path))}, columns = {{'line': 'VARCHAR'}}, header = false,
                              delim = chr(31), quote = '', escape = '', new_line = '\\n',
                              auto_detect = false, strict_mode = true, encoding = 'utf-8')),
            checked AS (
                -- exactly YYYY-MM-DDTHH:MM:SSZ with a real time of day (the cast alone would take
                -- other spellings and roll hour 24 over), and a real date (the cast rejects Feb 29
                -- of a non-leap year, month 13, day 0...); year 0000 is out of range, as in Spark
                SELECT f, CASE WHEN len(f) = 6 AND regexp_full_match(f[2], '{TIMESTAMP_PATTERN}')
                                    AND NOT starts_with(f[2], '0000')
                               THEN try_cast(f[2] AS TIMESTAMP) END AS played_at
                FROM lines)
            SELECT CASE WHEN len(f) <> 6 THEN 'wrong_column_count'
                        WHEN f[1] = '' THEN 'empty_user_id'
                        WHEN played_at IS NULL THEN 'bad_timestamp'
                        WHEN f[6] = '' THEN 'empty_track_name' END AS reason,
                   CASE WHEN reason IS NULL THEN f[1] END AS user_id,
                   CASE WHEN reason IS NULL THEN played_at END AS played_at,
                   CASE WHEN reason IS NULL THEN f[4] END AS artist_name,
                   CASE WHEN reason IS NULL THEN f[6] END AS track_name
            FROM checked""")
        counts = dict(con.execute(f"SELECT coalesce(reason, 'accepted'), count(*) FROM {plays} GROUP BY ALL").fetchall())

        # session edges: the first and the last play of each session, then one row per session
        con.execute(f"""
            CREATE TEMP TABLE {sessions} AS
            WITH ordered AS (
                SELECT user_id, played_at,
                       row_number() OVER w AS n,
                       epoch_us(played_at) - epoch_us(lag(played_at) OVER w) AS gap_before,
                       epoch_us(lead(played_at) OVER w) - epoch_us(played_at) AS gap_after
                FROM {plays} WHERE reason IS NULL
                WINDOW w AS (PARTITION BY user_id ORDER BY played_at)),
            edges AS (
                SELECT user_id, played_at, n,
                       gap_before IS NULL OR gap_before > {gap_us} AS is_first,
                       gap_after IS NULL OR gap_after > {gap_us} AS is_last
                FROM ordered
                WHERE gap_before IS NULL OR gap_before > {gap_us} OR gap_after IS NULL OR gap_after > {gap_us}),
            spans AS (
                SELECT user_id, is_first, played_at AS session_start,
                       CASE WHEN is_last THEN played_at ELSE lead(played_at) OVER e END AS session_end,
                       CASE WHEN is_last THEN n ELSE lead(n) OVER e END - n + 1 AS tracks
                FROM edges WINDOW e AS (PARTITION BY user_id ORDER BY n))
            SELECT row_number() OVER (ORDER BY tracks DESC, session_start, user_id) AS rank,
                   substr(sha256(user_id || '|' || strftime(session_start, '%Y-%m-%d %H:%M:%S')), 1, 32) AS session_id,
                   user_id, session_start, session_end, tracks
            FROM spans WHERE is_first
            ORDER BY tracks DESC, session_start, user_id
            LIMIT {int(top_sessions)}""")
        top_sessions_rows = con.execute(f"SELECT * FROM {sessions} ORDER BY rank").fetchall()

        # a user's sessions do not overlap, so a play is in a top session iff its time is in the session's span
        top_songs_rows = con.execute(f"""
            SELECT row_number() OVER (ORDER BY plays DESC, artist_name, track_name) AS rank,
                   artist_name, track_name, plays
            FROM (SELECT p.artist_name, p.track_name, count(*) AS plays
                  FROM {plays} p JOIN {sessions} s
                    ON p.user_id = s.user_id AND p.played_at BETWEEN s.session_start AND s.session_end
                  WHERE p.reason IS NULL
                  GROUP BY ALL)
            ORDER BY rank LIMIT {int(top_songs)}""").fetchall()
    finally:
        for table in (plays, sessions):
            con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute(f"SET default_collation = {sql_string(collation)}")
        if own:
            con.close()
    rejected = {reason: int(counts.get(reason, 0)) for reason in REASONS}
    accepted = int(counts.get("accepted", 0))
    return {"top_sessions": [tuple(r) for r in top_sessions_rows], "top_songs": [tuple(r) for r in top_songs_rows],
            "rows_read": accepted + sum(rejected.values()), "accepted": accepted, "rejected_by_reason": rejected}


def published_tables(rows_of: Callable[[str], list[dict]]) -> dict[str, list[tuple]]:
    """The gold tables a Spark run published (``rows_of(table)``: its rows as dicts,
    e.g. from PyIceberg), in the shape ``lastfm_tables`` returns them."""
    def naive_utc(t: dt.datetime) -> dt.datetime:
        assert t.utcoffset() == dt.timedelta(0), t
        return t.replace(tzinfo=None)

    sessions = sorted(rows_of("gold.lastfm_top_sessions"), key=lambda r: r["rank"])
    songs = sorted(rows_of("gold.lastfm_top_songs"), key=lambda r: r["rank"])
    return {"top_sessions": [(r["rank"], r["session_id"], r["user_id"], naive_utc(r["session_start"]),
                              naive_utc(r["session_end"]), r["tracks"]) for r in sessions],
            "top_songs": [(r["rank"], r["artist_name"], r["track_name"], r["plays"]) for r in songs]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.duckdb_lastfm", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", type=Path, help="the LastFM-1K TSV")
    ap.add_argument("--session-gap-seconds", type=int, default=1200)
    ap.add_argument("--top-sessions", type=int, default=50)
    ap.add_argument("--top-songs", type=int, default=10)
    ap.add_argument("--threads", type=int, help="DuckDB threads (default: all cores)")
    ap.add_argument("--memory-limit", help="DuckDB memory_limit, e.g. 4GB")
    a = ap.parse_args(argv)
    began = time.perf_counter()
    out = lastfm_tables(a.file, a.session_gap_seconds, a.top_sessions, a.top_songs,
                        con=connect(a.threads, a.memory_limit))
    seconds = time.perf_counter() - began
    print(f"rows_read {out['rows_read']:,}  accepted {out['accepted']:,}  rejected "
          + ", ".join(f"{k} {v:,}" for k, v in out["rejected_by_reason"].items()))
    print("gold.lastfm_top_sessions (rank, session_id, user_id, session_start, session_end, tracks)")
    for rank, sid, user, start, end, tracks in out["top_sessions"]:
        print(f"  {rank:>4}  {sid}  {user}  {start:%Y-%m-%d %H:%M:%S}  {end:%Y-%m-%d %H:%M:%S}  {tracks:>7,}")
    print("gold.lastfm_top_songs (rank, artist_name, track_name, plays)")
    for rank, artist, track, plays in out["top_songs"]:
        print(f"  {rank:>4}  {artist!r}  {track!r}  {plays:>7,}")
    print(f"seconds {seconds:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
