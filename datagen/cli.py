"""Landing-data generator: `python -m datagen --mode challenge|realistic --out DIR`.

Writes DIR/user_interactions/ and DIR/user_metadata/ (replacing both) plus
DIR/_manifest.json, deterministically from --seed: the same arguments give
byte-identical files.

Modes
  challenge  The public GoodNote challenge's own generator, vectorised: same
             header and column order, same value domains, uniform draws
             (user ids u%06d from 1..--users, page ids p%06d from 1..1,000,000,
             duration_ms 100..300000, app_version 5-7.0-9.0-9, timestamps
             uniform over [start, start + (days-1) days] to the second, join
             dates uniform over [start - 1096 days, last day]), CRLF line
             endings as Python's csv.writer writes them. No malformed rows by
             default.
  realistic  Zipf-like activity with a handful of hot users holding ~25% of
             events, sessions (bursts of events separated by gaps, including
             gaps of exactly 1800 s and 1801 s), a daily rhythm, weekly and
             growth trends, app versions rolled out over time, page-load
             latency that depends on device and version, two injected
             anomalies (a latency spike of one version on one day, a usage
             burst on one day), exact duplicate rows, and --malformed-share
             malformed rows covering every reject reason of docs/tables.md.

Rows are generated in chunks of --chunk-rows with numpy and streamed to the
files, so 100M rows never sit in memory. Each chunk has its own random stream
(seed, stream, chunk index), and rows are routed to date folders after
generation, so --layout file and --layout date-folders hold the same rows.

Parquet files hold the same fields as the CSV, all as strings (the raw landing
text), so malformed values stay representable; a Parquet row cannot have a
wrong column count, so those two malformed kinds exist in CSV only.

--malformed-lines adds the kinds of malformed line ingest rejects before parsing
(blank, NUL-only, not valid UTF-8; LINE_FAULT_KINDS) to the malformed rows of
CSV files. It is off by default: without it the files are what they were, text
every consumer reads (the DuckDB parity reader among them).
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

from datagen.anomalies import BAD_BATCH_KINDS
from datagen.config import Config
from datagen.domains import DEFAULT_DUPLICATE_SHARE, HOT_USER_EVENT_SHARE, HOT_USERS
from datagen.generate import run

MAX_CHUNK_ROWS = 5_000_000


def parse_args(argv: list[str] | None = None) -> Config:
    bad_batch_help = "; ".join(f"{k}: {v}" for k, v in BAD_BATCH_KINDS.items()).replace("%", "%%")
    p = argparse.ArgumentParser(
        prog="python -m datagen", description=__doc__,
        epilog="Writes OUT/user_interactions/, OUT/user_metadata/ (both replaced) and OUT/_manifest.json "
               "(counts, malformed rows by kind, injected anomalies, hot users).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["challenge", "realistic"], required=True, help="see above")
    p.add_argument("--out", type=Path, required=True, help="landing directory")
    p.add_argument("--events", type=int, default=1_000_000, help="interaction rows, malformed and duplicates included (default 1,000,000)")
    p.add_argument("--users", type=int, default=None,
                   help="challenge: user id space (default 1,000,000); realistic: number of users (default 100,000)")
    p.add_argument("--metadata-rows", type=int, default=None,
                   help="challenge only: metadata rows (default events/10, the challenge's ratio); "
                        "realistic derives them from --users")
    p.add_argument("--start-date", type=dt.date.fromisoformat, default=dt.date(2023, 1, 1),
                   help="first event date, YYYY-MM-DD (default 2023-01-01)")
    p.add_argument("--days", type=int, default=365, help="days of events (default 365)")
    p.add_argument("--format", dest="file_format", choices=["csv", "parquet"], default="csv",
                   help="CSV with a header, or Parquet with the same fields as strings (default csv)")
    p.add_argument("--layout", choices=["file", "date-folders"], default="file",
                   help="interactions as one file, or Hive-style date=YYYY-MM-DD/ folders (default file)")
    p.add_argument("--metadata-layout", choices=["file", "country-folders"], default="file",
                   help="metadata as one file, or Hive-style country=XX/ folders, the country only in the path (default file)")
    p.add_argument("--seed", type=int, default=42, help="same arguments + seed = byte-identical files (default 42)")
    p.add_argument("--malformed-share", type=float, default=None,
                   help="share of malformed rows (default 0.01 realistic, 0 challenge)")
    p.add_argument("--malformed-lines", action="store_true",
                   help="CSV only: the malformed rows also include blank lines, NUL-only lines and lines "
                        "that are not valid UTF-8 (off by default)")
    p.add_argument("--duplicate-share", type=float, default=None,
                   help=f"share of exact duplicate interaction rows (default {DEFAULT_DUPLICATE_SHARE} realistic, 0 challenge)")
    p.add_argument("--bad-batch", choices=sorted(BAD_BATCH_KINDS), default=None,
                   help=f"make a batch a quality gate must stop. {bad_batch_help}")
    p.add_argument("--hot-users", type=int, default=HOT_USERS,
                   help=f"realistic: number of hot (power) users, at most users/20 (default {HOT_USERS})")
    p.add_argument("--hot-user-share", type=float, default=HOT_USER_EVENT_SHARE,
                   help=f"realistic: share of all events the hot users make together (default {HOT_USER_EVENT_SHARE})")
    p.add_argument("--chunk-rows", type=int, default=1_000_000, help="rows generated per chunk; bounds memory, and is part of what the seed reproduces (default 1,000,000)")
    a = p.parse_args(argv)
    realistic = a.mode == "realistic"
    users = a.users if a.users is not None else (100_000 if realistic else 1_000_000)
    cfg = Config(
        mode=a.mode, out=a.out, events=a.events, users=users,
        metadata_rows=None if realistic else (a.metadata_rows if a.metadata_rows is not None else a.events // 10),
        start_date=a.start_date, days=a.days, file_format=a.file_format, layout=a.layout,
        metadata_layout=a.metadata_layout, seed=a.seed,
        malformed_share=a.malformed_share if a.malformed_share is not None else (0.01 if realistic else 0.0),
        duplicate_share=a.duplicate_share if a.duplicate_share is not None else
        (DEFAULT_DUPLICATE_SHARE if realistic else 0.0),
        bad_batch=a.bad_batch, chunk_rows=a.chunk_rows, hot_users=a.hot_users, hot_user_share=a.hot_user_share,
        malformed_lines=a.malformed_lines)
    problems = [msg for bad, msg in [
        (cfg.events < 0, f"--events must be >= 0, got {cfg.events}"),
        (cfg.users < 1, f"--users must be >= 1, got {cfg.users}"),
        (cfg.days < 1, f"--days must be >= 1, got {cfg.days}"),
        # a chunk's CSV text must stay under Arrow's 2 GiB string-array limit
        (not 1 <= cfg.chunk_rows <= MAX_CHUNK_ROWS, f"--chunk-rows must be in [1, {MAX_CHUNK_ROWS}], got {cfg.chunk_rows}"),
        (not 0 <= cfg.malformed_share < 1, f"--malformed-share must be in [0, 1), got {cfg.malformed_share}"),
        (not 0 <= cfg.duplicate_share < 1, f"--duplicate-share must be in [0, 1), got {cfg.duplicate_share}"),
        (cfg.hot_users < 1, f"--hot-users must be >= 1, got {cfg.hot_users}"),
        (not 0 < cfg.hot_user_share < 1, f"--hot-user-share must be in (0, 1), got {cfg.hot_user_share}"),
    ] if bad]
    if problems:
        p.error("; ".join(problems))
    return cfg


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    began = time.perf_counter()
    manifest = run(cfg)
    seconds = time.perf_counter() - began
    rows = manifest["user_interactions"]["rows"] + manifest["user_metadata"]["rows"]
    print(f"datagen: {cfg.mode} -> {cfg.out}: {manifest['user_interactions']['rows']} interactions, "
          f"{manifest['user_metadata']['rows']} metadata rows in {seconds:.1f}s "
          f"({rows / max(seconds, 1e-9):,.0f} rows/s); manifest {cfg.out / '_manifest.json'}", file=sys.stderr)
    for anomaly in manifest.get("anomalies", []):
        print(f"datagen: injected {anomaly}", file=sys.stderr)
    return 0
