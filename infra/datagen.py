"""Landing-data generator: `python -m infra.datagen --mode challenge|realistic --out DIR`.

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
import dataclasses
import datetime as dt
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# --- value domains of the public challenge generator -------------------------
INTERACTION_COLUMNS = ["user_id", "timestamp", "action_type", "page_id", "duration_ms", "app_version"]
METADATA_COLUMNS = ["user_id", "join_date", "country", "device_type", "subscription_type"]
ACTION_TYPES = ["page_view", "edit", "create", "delete", "share"]
COUNTRIES = ["US", "UK", "CA", "AU", "DE", "FR", "JP", "IN", "BR", "MX"]
DEVICE_TYPES = ["iPhone", "iPad", "Android Phone", "Android Tablet", "Windows", "Mac"]
SUBSCRIPTION_TYPES = ["free", "basic", "premium", "enterprise"]
CHALLENGE_PAGE_IDS = 1_000_000
CHALLENGE_DURATION_MS = (100, 300_000)
CHALLENGE_APP_MAJORS = (5, 7)
# The challenge draws join dates from 2020-01-01 to 2023-12-31 around events of
# 2023: i.e. 1096 days before the first event day up to the last one.
JOIN_DAYS_BEFORE_START = 1096

# --- malformed rows: one kind per reject reason of docs/tables.md ----------------
INTERACTION_MALFORMED_KINDS = [
    "too_few_columns", "too_many_columns", "empty_user_id", "bad_timestamp",
    "negative_duration", "non_integer_duration", "bad_app_version",
]
METADATA_MALFORMED_KINDS = ["too_few_columns", "too_many_columns", "empty_user_id"]
COLUMN_COUNT_KINDS = {"too_few_columns", "too_many_columns"}
# With --malformed-lines, in CSV only: whole lines that are no row at all, named as
# ingest's reject reasons. The row's line is replaced by (taking the values in turn)
# a blank line, a line of NULs, or the line with bytes that are not UTF-8 after its
# user_id: a byte UTF-8 never uses, a character cut short, a surrogate, an overlong "/".
LINE_FAULT_KINDS = ["blank_line", "nul_only_line", "invalid_utf8"]
BLANK_LINES = [b"", b" ", b"\t", b"  \t "]
NUL_ONLY_LINES = [b"\x00", b"\x00\x00\x00\x00"]
INVALID_UTF8_BYTES = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf"]
# None of these parses as `YYYY-MM-DD HH:MM:SS` under any reading (no Feb 30
# style values that lenient parsers roll over, no empty line that CSV readers
# skip silently).
BAD_TIMESTAMPS = ["not-a-timestamp", "2023-13-45 25:61:61", "yesterday", "2023/07/01 14:30:15"]
BAD_DURATIONS_NON_INTEGER = ["12.5", "abc", "1.5e3"]
BAD_APP_VERSIONS = ["5.7", "v5.7.3", "5.7.x", "5.7.3-beta"]

BAD_BATCH_KINDS = {
    "out_of_set": "5% of action_type, device_type and subscription_type values outside their sets",
    "broken_join": "every metadata user_id is outside the event id space, so no event user has metadata",
    "null_user": "20% of interaction rows have an empty user_id",
}
OUT_OF_SET_SHARE = 0.05
NULL_USER_SHARE = 0.20
OUT_OF_SET_VALUES = {
    "action_type": ["scroll", "export", "unknown_action"],
    "device_type": ["Kindle", "Linux", "Smart TV"],
    "subscription_type": ["trial", "lifetime"],
}

# --- realistic-mode shape ------------------------------------------------------
HOT_USERS = 5
HOT_USER_EVENT_SHARE = 0.25
ZIPF_EXPONENT = 1.0
ZIPF_RANK_OFFSET = 10
MEAN_SESSION_EVENTS = 6.0
MEAN_INTRA_SESSION_GAP_S = 45.0
GAP_EQUAL_TS_SHARE = 0.02          # equal timestamps inside a session
GAP_EXACT_1800_SHARE = 0.002       # continues the session (boundary rule)
GAP_EXACT_1801_SHARE = 0.002       # starts a new session
HOURLY_RHYTHM = np.array([          # UTC hour -> relative activity
    0.35, 0.25, 0.18, 0.15, 0.15, 0.2, 0.35, 0.6, 0.85, 1.0, 1.05, 1.1,
    1.15, 1.2, 1.25, 1.2, 1.15, 1.15, 1.25, 1.4, 1.5, 1.35, 1.0, 0.6])
WEEKEND_FACTOR = 0.8
GROWTH_OVER_WINDOW = 0.3
USAGE_BURST_FACTOR = 3.0
LATENCY_SPIKE_FACTOR = 5.0
ACTION_MIX = np.array([0.55, 0.25, 0.08, 0.05, 0.07])   # order of ACTION_TYPES
ACTION_MEDIAN_MS = np.array([0.0, 45_000, 20_000, 2_000, 5_000])  # page_view from latency model
DEVICE_MEDIAN_LATENCY_MS = np.array([900, 800, 1400, 1600, 1100, 700])  # order of DEVICE_TYPES
LONG_DURATION_SHARE = 0.002         # edits left open for 8-30 h: exercises the duration cap
COUNTRY_MIX = np.array([0.33, 0.09, 0.06, 0.04, 0.08, 0.06, 0.1, 0.12, 0.07, 0.05])
DEVICE_MIX = np.array([0.3, 0.25, 0.17, 0.06, 0.12, 0.1])
SUBSCRIPTION_MIX = np.array([0.6, 0.2, 0.15, 0.05])
META_MISSING_SHARE = 0.08           # active users without any metadata row
META_DUP_LATER_SHARE = 0.03         # second row with a later join_date
META_DUP_TIED_SHARE = 0.01          # second row with the same join_date
JOIN_DAYS_BEFORE_START_REALISTIC = 730
DEFAULT_DUPLICATE_SHARE = 0.001

SECONDS_PER_DAY = 86_400
MAX_CHUNK_ROWS = 5_000_000
STREAM_INTERACTIONS, STREAM_METADATA, STREAM_WORLD = 1, 2, 3


@dataclasses.dataclass(frozen=True)
class Config:
    mode: str
    out: Path
    events: int
    users: int
    metadata_rows: int | None      # challenge only; realistic derives metadata from users
    start_date: dt.date
    days: int
    file_format: str
    layout: str
    metadata_layout: str
    seed: int
    malformed_share: float
    duplicate_share: float
    bad_batch: str | None
    chunk_rows: int
    hot_users: int = HOT_USERS                      # realistic only
    hot_user_share: float = HOT_USER_EVENT_SHARE    # realistic only: their events, together
    malformed_lines: bool = False                   # CSV only: LINE_FAULT_KINDS among the malformed rows

    @property
    def hot_user_count(self) -> int:
        return min(self.hot_users, max(1, self.users // 20))

    @property
    def line_ending(self) -> str:
        # Python's csv.writer (the challenge generator) ends lines with CRLF.
        return "\r\n" if self.mode == "challenge" else "\n"

    @property
    def id_space(self) -> int:
        return self.users if self.mode == "challenge" else max(1_000_000, self.users)


# =============================================================================
# Small pure helpers
# =============================================================================
def chunk_rng(seed: int, stream: int, chunk: int) -> np.random.Generator:
    """One independent stream per (seed, dataset, chunk): chunks can be made in any order."""
    return np.random.default_rng([seed, stream, chunk])


def chunk_sizes(total: int, chunk_rows: int) -> list[int]:
    return [min(chunk_rows, total - start) for start in range(0, total, chunk_rows)]


def prefixed_ids(prefix: str, numbers: np.ndarray, width: int = 6) -> pa.Array:
    """`u%06d`-style ids; like Python's format, wider numbers are not truncated."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def time_of_day_strings() -> pa.Array:
    return pa.array([f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)])


def date_strings(first: dt.date, count: int) -> pa.Array:
    return pa.array([(first + dt.timedelta(days=i)).isoformat() for i in range(count)])


class Calendar:
    """Day offsets relative to --start-date <-> 'YYYY-MM-DD' strings, by table lookup
    (an order of magnitude faster than strftime per row)."""

    def __init__(self, start: dt.date, first_day: int, last_day: int):
        self.start, self.first_day = start, first_day
        self.dates = date_strings(start + dt.timedelta(days=first_day), last_day - first_day + 1)
        self.times = time_of_day_strings()

    def date(self, day: np.ndarray) -> pa.Array:
        return self.dates.take(pa.array(day - self.first_day))

    def timestamp(self, seconds: np.ndarray) -> pa.Array:
        day, second = np.divmod(seconds, SECONDS_PER_DAY)
        return pc.binary_join_element_wise(self.date(day), self.times.take(pa.array(second)), " ")

    def iso(self, day: int) -> str:
        return (self.start + dt.timedelta(days=int(day))).isoformat()


def choose(rng: np.random.Generator, values: list[str], n: int, p: np.ndarray | None = None) -> pa.Array:
    return pa.array(values).take(pa.array(rng.choice(len(values), n, p=p)))


def pick_rows(rng: np.random.Generator, n: int, share: float, exclude: np.ndarray | None = None) -> np.ndarray:
    """Exactly round(share * n) distinct row indices (deterministic count, random rows)."""
    candidates = np.arange(n) if exclude is None else np.flatnonzero(~exclude)
    k = min(len(candidates), int(round(share * n)))
    return np.sort(rng.choice(candidates, k, replace=False)) if k else np.empty(0, np.int64)


# =============================================================================
# A chunk of rows: string fields (the landing text) + where each row goes
# =============================================================================
@dataclasses.dataclass
class Rows:
    columns: list[str]
    fields: dict[str, pa.Array]           # column -> StringArray, landing text
    route: np.ndarray                     # day offset (interactions) or country index (metadata)
    column_count: np.ndarray              # per row: -1 too few, 0 right, +1 too many
    line_fault: np.ndarray | None = None  # per row: 0, or 1 + the LINE_FAULT_KINDS index of its line

    def __len__(self) -> int:
        return len(self.route)

    def take(self, index: np.ndarray) -> "Rows":
        idx = pa.array(index)
        return Rows(self.columns, {c: a.take(idx) for c, a in self.fields.items()},
                    self.route[index], self.column_count[index],
                    None if self.line_fault is None else self.line_fault[index])

    def replace(self, column: str, rows: np.ndarray, values: pa.Array) -> None:
        mask = np.zeros(len(self), bool)
        mask[rows] = True
        self.fields[column] = pc.replace_with_mask(self.fields[column], pa.array(mask), values)


def inject_duplicates(rows: Rows, rng: np.random.Generator, share: float) -> tuple[Rows, int, np.ndarray]:
    """Rows that repeat the row before them exactly (at-least-once delivery).
    Also returns a mask of the copies and their originals, which must stay intact."""
    involved = np.zeros(len(rows), bool)
    dup = pick_rows(rng, len(rows), share)
    dup = dup[dup > 0]
    if not len(dup):
        return rows, 0, involved
    source = np.arange(len(rows))
    # a run of picked rows all copy the first row before the run
    for i in dup:
        source[i] = source[i - 1]
    involved[dup] = True
    involved[dup - 1] = True
    return rows.take(source), len(dup), involved


def inject_malformed(rows: Rows, rng: np.random.Generator, share: float, kinds: list[str],
                     protected: np.ndarray | None = None) -> dict[str, int]:
    """Corrupt round(share * n) rows, spreading them evenly over `kinds`. Returns counts per kind."""
    picked = pick_rows(rng, len(rows), share, exclude=protected)
    kind_of = rng.permutation(np.arange(len(picked)) % len(kinds)) if len(picked) else np.empty(0, int)
    counts: dict[str, int] = {}
    for k, kind in enumerate(kinds):
        target = picked[kind_of == k]
        counts[kind] = int(len(target))
        if not len(target):
            continue
        n = len(target)
        if kind == "too_few_columns":
            rows.column_count[target] = -1
        elif kind == "too_many_columns":
            rows.column_count[target] = 1
        elif kind == "empty_user_id":
            rows.replace("user_id", target, pa.array([""] * n))
        elif kind == "bad_timestamp":
            rows.replace("timestamp", target, choose(rng, BAD_TIMESTAMPS, n))
        elif kind == "negative_duration":
            rows.replace("duration_ms", target, pc.cast(pa.array(-rng.integers(1, 300_000, n)), pa.string()))
        elif kind == "non_integer_duration":
            rows.replace("duration_ms", target, choose(rng, BAD_DURATIONS_NON_INTEGER, n))
        elif kind == "bad_app_version":
            rows.replace("app_version", target, choose(rng, BAD_APP_VERSIONS, n))
        elif kind in LINE_FAULT_KINDS:
            if rows.line_fault is None:
                rows.line_fault = np.zeros(len(rows), np.int8)
            rows.line_fault[target] = 1 + LINE_FAULT_KINDS.index(kind)
        else:
            raise ValueError(f"unknown malformed kind {kind!r}; expected one of {kinds}")
    return counts


def inject_out_of_set(rows: Rows, rng: np.random.Generator, columns: list[str]) -> dict[str, int]:
    counts = {}
    for column in columns:
        target = pick_rows(rng, len(rows), OUT_OF_SET_SHARE)
        rows.replace(column, target, choose(rng, OUT_OF_SET_VALUES[column], len(target)))
        counts[column] = int(len(target))
    return counts


def csv_lines(rows: Rows, line_ending: str) -> pa.Array:
    """Each row as one CSV line including its line ending. No field contains a
    comma, quote or newline, so no quoting is needed (csv.writer writes the same)."""
    columns = [rows.fields[c] for c in rows.columns]
    lines = pc.binary_join_element_wise(*columns, ",")
    short = np.flatnonzero(rows.column_count < 0)
    if len(short):   # the last field is missing
        idx = pa.array(short)
        lines = _replace_rows(lines, short, pc.binary_join_element_wise(*[c.take(idx) for c in columns[:-1]], ","))
    long = np.flatnonzero(rows.column_count > 0)
    if len(long):    # one field too many
        lines = _replace_rows(lines, long, pc.binary_join_element_wise(lines.take(pa.array(long)), "extra", ","))
    lines = pc.binary_join_element_wise(lines, pa.scalar(""), line_ending)
    return _with_line_faults(lines, rows.line_fault, line_ending.encode())


def _with_line_faults(lines: pa.Array, faults: np.ndarray | None, ending: bytes) -> pa.Array:
    """``lines`` with the rows of a line fault replaced (see LINE_FAULT_KINDS), as
    bytes: a line that is not UTF-8 cannot be a string."""
    rows = np.empty(0, np.int64) if faults is None else np.flatnonzero(faults)
    if not len(rows):
        return lines
    values = []
    for i, line in enumerate(lines.take(pa.array(rows)).cast(pa.binary()).to_pylist()):
        kind = LINE_FAULT_KINDS[faults[rows[i]] - 1]
        if kind == "blank_line":
            values.append(BLANK_LINES[i % len(BLANK_LINES)] + ending)
        elif kind == "nul_only_line":
            values.append(NUL_ONLY_LINES[i % len(NUL_ONLY_LINES)] + ending)
        else:
            user_id, rest = line.split(b",", 1)
            values.append(user_id + INVALID_UTF8_BYTES[i % len(INVALID_UTF8_BYTES)] + b"," + rest)
    return _replace_rows(lines.cast(pa.binary()), rows, pa.array(values, pa.binary()))


def _replace_rows(array: pa.Array, rows: np.ndarray, values: pa.Array) -> pa.Array:
    mask = np.zeros(len(array), bool)
    mask[rows] = True
    return pc.replace_with_mask(array, pa.array(mask), values)


def string_buffer(lines: pa.Array) -> tuple[memoryview, np.ndarray]:
    """The bytes of a StringArray (or BinaryArray) and each row's start offset into
    them (n + 1 entries), without copying: row i is bytes[offsets[i]:offsets[i + 1]]."""
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    offsets = np.frombuffer(lines.buffers()[1], np.int32, len(lines) + 1, lines.offset * 4)
    return memoryview(lines.buffers()[2]), offsets.astype(np.int64)


# =============================================================================
# Sinks: one file, or one file per route value (date= / country= folders)
# =============================================================================
class Sink:
    """Writes Rows to `directory`, either to one file or split by route value into
    Hive-style folders. Files are opened lazily and kept open until close()."""

    def __init__(self, directory: Path, base_name: str, columns: list[str], cfg: Config,
                 folder_of_route=None, partition_column: str | None = None):
        self.directory, self.base_name, self.cfg = directory, base_name, cfg
        self.folder_of_route = folder_of_route
        # Hive-style folders carry the partition column in the path, not in the file
        # (as Spark's partitionBy writes them).
        self.columns = [c for c in columns if c != partition_column]
        self.open: dict[object, object] = {}

    def _path(self, key) -> Path:
        ext = "csv" if self.cfg.file_format == "csv" else "parquet"
        if self.folder_of_route is None:
            return self.directory / f"{self.base_name}.{ext}"
        return self.directory / self.folder_of_route(key) / f"part-00000.{ext}"

    def _writer(self, key):
        if key not in self.open:
            path = self._path(key)
            path.parent.mkdir(parents=True, exist_ok=True)
            if self.cfg.file_format == "csv":
                handle = open(path, "wb")
                handle.write((",".join(self.columns) + self.cfg.line_ending).encode())
                self.open[key] = handle
            else:
                schema = pa.schema([(c, pa.string()) for c in self.columns])
                self.open[key] = pq.ParquetWriter(path, schema, compression="snappy")
        return self.open[key]

    def write(self, rows: Rows) -> None:
        if not len(rows):
            return
        rows = Rows(self.columns, {c: rows.fields[c] for c in self.columns}, rows.route, rows.column_count,
                    rows.line_fault)
        if self.folder_of_route is None:
            parts = [(None, 0, len(rows))]
        else:
            # realistic chunks come time-ordered already; challenge chunks need the sort
            if np.any(rows.route[1:] < rows.route[:-1]):
                rows = rows.take(np.argsort(rows.route, kind="stable"))
            keys, starts = np.unique(rows.route, return_index=True)
            parts = list(zip(keys.tolist(), starts.tolist(), [*starts[1:].tolist(), len(rows)]))
        # encode the whole chunk once; each folder gets a zero-copy slice of it
        if self.cfg.file_format == "csv":
            lines = csv_lines(rows, self.cfg.line_ending)
            data, offsets = string_buffer(lines)
            for key, start, end in parts:
                self._writer(key).write(data[offsets[start]:offsets[end]])
        else:
            table = pa.table(rows.fields)
            for key, start, end in parts:
                self._writer(key).write_table(table.slice(start, end - start))

    def close(self) -> list[str]:
        # an empty dataset is still a dataset: a header-only file, or an empty folder
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.folder_of_route is None:
            self._writer(None)
        for writer in self.open.values():
            writer.close()
        paths = sorted(str(self._path(k).relative_to(self.directory.parent)) for k in self.open)
        self.open.clear()
        return paths


# =============================================================================
# challenge mode: the public generator's distributions, vectorised
# =============================================================================
def challenge_interactions(cfg: Config, cal: Calendar, rng: np.random.Generator, n: int) -> Rows:
    seconds = rng.integers(0, (cfg.days - 1) * SECONDS_PER_DAY, n, endpoint=True)
    majors = rng.integers(CHALLENGE_APP_MAJORS[0], CHALLENGE_APP_MAJORS[1], n, endpoint=True)
    minor, patch = rng.integers(0, 9, n, endpoint=True), rng.integers(0, 9, n, endpoint=True)
    versions = pc.binary_join_element_wise(*(pc.cast(pa.array(x), pa.string()) for x in (majors, minor, patch)), ".")
    fields = {
        "user_id": prefixed_ids("u", rng.integers(1, cfg.users, n, endpoint=True)),
        "timestamp": cal.timestamp(seconds),
        "action_type": choose(rng, ACTION_TYPES, n),
        "page_id": prefixed_ids("p", rng.integers(1, CHALLENGE_PAGE_IDS, n, endpoint=True)),
        "duration_ms": pc.cast(pa.array(rng.integers(*CHALLENGE_DURATION_MS, n, endpoint=True)), pa.string()),
        "app_version": versions,
    }
    return Rows(INTERACTION_COLUMNS, fields, seconds // SECONDS_PER_DAY, np.zeros(n, np.int8))


def challenge_metadata(cfg: Config, cal: Calendar, rng: np.random.Generator, n: int) -> Rows:
    country = rng.integers(0, len(COUNTRIES), n)
    fields = {
        "user_id": prefixed_ids("u", rng.integers(1, cfg.users, n, endpoint=True)),
        "join_date": cal.date(rng.integers(-JOIN_DAYS_BEFORE_START, cfg.days - 1, n, endpoint=True)),
        "country": pa.array(COUNTRIES).take(pa.array(country)),
        "device_type": choose(rng, DEVICE_TYPES, n),
        "subscription_type": choose(rng, SUBSCRIPTION_TYPES, n),
    }
    return Rows(METADATA_COLUMNS, fields, country, np.zeros(n, np.int8))


# =============================================================================
# realistic mode: a fixed "world" (users, versions, anomalies) + sessions per chunk
# =============================================================================
@dataclasses.dataclass
class World:
    user_ids: pa.Array            # index -> 'u%06d'
    user_cdf: np.ndarray          # cumulative activity weight
    join_day: np.ndarray          # earliest join day offset per user
    country: np.ndarray
    device: np.ndarray
    subscription: np.ndarray
    has_metadata: np.ndarray
    day_cdf: np.ndarray           # cumulative weight of session start day
    hour_cdf: np.ndarray
    versions: list[str]
    release_day: np.ndarray       # float day each version is released (sorted)
    version_latency_factor: np.ndarray
    spike_day: int
    spike_version: int
    burst_day: int


def release_versions(rng: np.random.Generator, count: int) -> list[str]:
    """A plausible release train in the challenge's domain (majors 5-7)."""
    major, minor, patch = 5, int(rng.integers(0, 5)), 0
    versions = []
    for _ in range(count):
        versions.append(f"{major}.{minor}.{patch}")
        if rng.random() < 0.3 and patch < 9:
            patch += 1
        elif minor < 9:
            minor, patch = minor + 1, 0
        elif major < CHALLENGE_APP_MAJORS[1]:
            major, minor, patch = major + 1, 0, 0
        else:
            patch = min(patch + 1, 9)
    return list(dict.fromkeys(versions))


def zipf_weights(users: int, hot: int, hot_share: float) -> np.ndarray:
    """``hot`` users share ``hot_share`` of the events; the rest follow Zipf."""
    # the offset keeps the busiest ordinary user well below a hot one
    tail = 1.0 / (np.arange(1, users - hot + 1) + ZIPF_RANK_OFFSET) ** ZIPF_EXPONENT
    tail *= (1 - hot_share) / tail.sum()
    return np.concatenate([np.full(hot, hot_share / hot), tail])


def day_weights(cfg: Config, burst_day: int) -> np.ndarray:
    day = np.arange(cfg.days)
    weekday = np.array([(cfg.start_date + dt.timedelta(days=int(d))).weekday() for d in day])
    weight = (1 + GROWTH_OVER_WINDOW * day / max(1, cfg.days - 1)) * np.where(weekday >= 5, WEEKEND_FACTOR, 1.0)
    weight[burst_day] *= USAGE_BURST_FACTOR
    return weight


def anomaly_days(rng: np.random.Generator, days: int) -> tuple[int, int]:
    """Latency-spike day and usage-burst day: late enough for a 14-day baseline
    (docs/tables.md needs >= 7 earlier values) when the window allows, and distinct."""
    low = min(21, days - 1)
    spike = int(rng.integers(max(low, days // 2), days)) if days > 1 else 0
    choices = [d for d in range(low, days) if d != spike] or [0]
    burst = int(choices[rng.integers(0, len(choices))])
    return spike, burst


def build_world(cfg: Config) -> World:
    rng = chunk_rng(cfg.seed, STREAM_WORLD, 0)
    u = cfg.users
    ids = rng.choice(cfg.id_space, u, replace=False) + 1
    weights = zipf_weights(u, cfg.hot_user_count, cfg.hot_user_share)
    hot = np.arange(u) < cfg.hot_user_count
    join_day = rng.integers(-JOIN_DAYS_BEFORE_START_REALISTIC, cfg.days, u)
    join_day[hot] = -JOIN_DAYS_BEFORE_START_REALISTIC // 2   # hot users are long-time users
    has_metadata = (rng.random(u) >= META_MISSING_SHARE) | hot

    versions = release_versions(rng, max(4, cfg.days // 21 + 3))
    # two versions exist before the window opens, the rest ship evenly through it
    release_day = np.concatenate([[-60.0, -20.0], np.linspace(0, cfg.days * 0.9, len(versions) - 1)[1:]])
    factor = np.linspace(1.25, 0.85, len(versions))     # newer releases load faster...
    factor[len(versions) // 2] *= 1.35                  # ...except one regression
    spike_day, burst_day = anomaly_days(rng, cfg.days)
    # the spike hits the version most users run that day: the newest one out >= 10 days
    spike_version = max(0, int(np.searchsorted(release_day, spike_day - 10, side="right")) - 1)
    hour_weights = HOURLY_RHYTHM / HOURLY_RHYTHM.sum()
    return World(
        user_ids=prefixed_ids("u", ids), user_cdf=np.cumsum(weights) / weights.sum(), join_day=join_day,
        country=rng.choice(len(COUNTRIES), u, p=COUNTRY_MIX), device=rng.choice(len(DEVICE_TYPES), u, p=DEVICE_MIX),
        subscription=rng.choice(len(SUBSCRIPTION_TYPES), u, p=SUBSCRIPTION_MIX), has_metadata=has_metadata,
        day_cdf=np.cumsum(w := day_weights(cfg, burst_day)) / w.sum(), hour_cdf=np.cumsum(hour_weights),
        versions=versions, release_day=release_day, version_latency_factor=factor,
        spike_day=spike_day, spike_version=spike_version, burst_day=burst_day)


def sample_cdf(rng: np.random.Generator, cdf: np.ndarray, n: int) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(cdf) - 1)


def session_lengths(rng: np.random.Generator, n_events: int) -> np.ndarray:
    """Geometric session sizes whose sum is exactly n_events (the last one is cut)."""
    lengths = rng.geometric(1 / MEAN_SESSION_EVENTS, int(n_events / MEAN_SESSION_EVENTS * 1.3) + 16)
    while lengths.sum() < n_events:
        lengths = np.concatenate([lengths, rng.geometric(1 / MEAN_SESSION_EVENTS, len(lengths))])
    ends = np.cumsum(lengths)
    last = int(np.searchsorted(ends, n_events))
    lengths = lengths[: last + 1].copy()
    lengths[-1] -= ends[last] - n_events
    return lengths


def intra_session_gaps(rng: np.random.Generator, n: int) -> np.ndarray:
    gaps = np.minimum(np.ceil(rng.exponential(MEAN_INTRA_SESSION_GAP_S, n)), 1799).astype(np.int64)
    special = rng.random(n)
    gaps[special < GAP_EQUAL_TS_SHARE] = 0
    edge = special >= 1 - GAP_EXACT_1800_SHARE - GAP_EXACT_1801_SHARE
    gaps[edge] = np.where(special[edge] >= 1 - GAP_EXACT_1801_SHARE, 1801, 1800)
    return gaps


def realistic_interactions(cfg: Config, world: World, cal: Calendar, rng: np.random.Generator, n: int) -> Rows:
    lengths = session_lengths(rng, n)
    s = len(lengths)
    user = sample_cdf(rng, world.user_cdf, s)
    day = sample_cdf(rng, world.day_cdf, s)
    # nobody acts before joining: such sessions move to a day after the join date
    join = np.maximum(world.join_day[user], 0)
    early = day < join
    day[early] = join[early] + (rng.random(early.sum()) * (cfg.days - join[early])).astype(np.int64)
    second_of_day = sample_cdf(rng, world.hour_cdf, s) * 3600 + rng.integers(0, 3600, s)

    session_of = np.repeat(np.arange(s), lengths)
    first_event = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    gaps = intra_session_gaps(rng, n)
    gaps[first_event] = 0
    elapsed = np.cumsum(gaps)
    offset = elapsed - elapsed[first_event][session_of]
    span = offset[first_event + lengths - 1]
    window_end = cfg.days * SECONDS_PER_DAY - 1
    start = np.minimum(day * SECONDS_PER_DAY + second_of_day, window_end - span)   # stay inside the window
    seconds = start[session_of] + offset

    # app version: users adopt a release some days after it ships; a few lag far behind
    lag = np.where(rng.random(s) < 0.05, rng.exponential(60, s), rng.exponential(7, s))
    version = np.clip(np.searchsorted(world.release_day, start / SECONDS_PER_DAY - lag, side="right") - 1, 0, None)
    version = version[session_of]

    action = rng.choice(len(ACTION_TYPES), n, p=ACTION_MIX)
    action[first_event] = 0                       # a session opens a page
    session_page = np.exp(rng.uniform(0, np.log(CHALLENGE_PAGE_IDS), s)).astype(np.int64)
    page = np.where(rng.random(n) < 0.75, session_page[session_of],
                    np.exp(rng.uniform(0, np.log(CHALLENGE_PAGE_IDS), n)).astype(np.int64))

    event_user = user[session_of]
    hour = (seconds % SECONDS_PER_DAY) // 3600
    load = 1 + 0.1 * (HOURLY_RHYTHM[hour] - 1)    # busier hours load a little slower
    latency = (DEVICE_MEDIAN_LATENCY_MS[world.device[event_user]] * world.version_latency_factor[version]
               * load * rng.lognormal(0, 0.45, n))
    spike = (seconds // SECONDS_PER_DAY == world.spike_day) & (version == world.spike_version)
    latency[spike] *= LATENCY_SPIKE_FACTOR
    other = ACTION_MEDIAN_MS[action] * rng.lognormal(0, 0.8, n)
    duration = np.where(action == 0, latency, other)
    long_edit = (action == 1) & (rng.random(n) < LONG_DURATION_SHARE)
    duration[long_edit] = rng.uniform(8 * 3600_000, 30 * 3600_000, long_edit.sum())
    duration = np.maximum(duration.astype(np.int64), 1)

    # within a chunk, rows come in time order like an append-only log
    order = np.argsort(seconds, kind="stable")
    seconds, event_user, action, page, duration, version = (
        x[order] for x in (seconds, event_user, action, page, duration, version))
    fields = {
        "user_id": world.user_ids.take(pa.array(event_user)),
        "timestamp": cal.timestamp(seconds),
        "action_type": pa.array(ACTION_TYPES).take(pa.array(action)),
        "page_id": prefixed_ids("p", page),
        "duration_ms": pc.cast(pa.array(duration), pa.string()),
        "app_version": pa.array(world.versions).take(pa.array(version)),
    }
    return Rows(INTERACTION_COLUMNS, fields, seconds // SECONDS_PER_DAY, np.zeros(n, np.int8))


def realistic_metadata(cfg: Config, world: World, cal: Calendar, rng: np.random.Generator,
                       users: np.ndarray) -> tuple[Rows, dict[str, int]]:
    """Rows for the users in `users` that have metadata, plus duplicate rows:
    some with a later join_date (re-registration), some with the same join_date
    and a different device (the tie docs/tables.md breaks by byte order)."""
    users = users[world.has_metadata[users]]
    pick = rng.random(len(users))
    later = users[pick < META_DUP_LATER_SHARE]
    tied = users[(pick >= META_DUP_LATER_SHARE) & (pick < META_DUP_LATER_SHARE + META_DUP_TIED_SHARE)]
    join = np.concatenate([
        world.join_day[users],
        np.minimum(world.join_day[later] + rng.integers(1, 400, len(later)), cfg.days - 1),
        world.join_day[tied]])
    device = np.concatenate([
        world.device[users], world.device[later],
        (world.device[tied] + rng.integers(1, len(DEVICE_TYPES), len(tied))) % len(DEVICE_TYPES)])
    subscription = np.concatenate([
        world.subscription[users],
        np.minimum(world.subscription[later] + rng.integers(0, 2, len(later)), len(SUBSCRIPTION_TYPES) - 1),
        world.subscription[tied]])
    who = np.concatenate([users, later, tied])
    order = rng.permutation(len(who))
    who, join, device, subscription = who[order], join[order], device[order], subscription[order]
    country = world.country[who]
    fields = {
        "user_id": world.user_ids.take(pa.array(who)),
        "join_date": cal.date(join),
        "country": pa.array(COUNTRIES).take(pa.array(country)),
        "device_type": pa.array(DEVICE_TYPES).take(pa.array(device)),
        "subscription_type": pa.array(SUBSCRIPTION_TYPES).take(pa.array(subscription)),
    }
    rows = Rows(METADATA_COLUMNS, fields, country, np.zeros(len(who), np.int8))
    return rows, {"duplicate_later_join_date": int(len(later)), "duplicate_tied_join_date": int(len(tied))}


# =============================================================================
# Driver
# =============================================================================
def add_counts(total: dict, part: dict) -> None:
    for k, v in part.items():
        if isinstance(v, dict):
            add_counts(total.setdefault(k, {}), v)
        else:
            total[k] = total.get(k, 0) + v


def interaction_kinds(cfg: Config, kinds: list[str]) -> list[str]:
    if cfg.file_format != "csv":
        return [k for k in kinds if k not in COLUMN_COUNT_KINDS]
    return kinds + LINE_FAULT_KINDS if cfg.malformed_lines else kinds


def finish_rows(cfg: Config, rows: Rows, rng: np.random.Generator, kinds: list[str],
                out_of_set_columns: list[str], duplicate_share: float) -> tuple[Rows, dict]:
    """Duplicates, malformed rows and bad-batch corruption, in a fixed order."""
    stats: dict = {"rows": len(rows)}
    rows, stats["exact_duplicates"], copies = inject_duplicates(rows, rng, duplicate_share)
    stats["malformed"] = inject_malformed(rows, rng, cfg.malformed_share, interaction_kinds(cfg, kinds), copies)
    if cfg.bad_batch == "out_of_set" and out_of_set_columns:
        stats["out_of_set"] = inject_out_of_set(rows, rng, out_of_set_columns)
    return rows, stats


def generate_interactions(cfg: Config, cal: Calendar, world: World | None, sink: Sink) -> dict:
    stats: dict = {"rows": 0, "exact_duplicates": 0,
                   "malformed": dict.fromkeys(interaction_kinds(cfg, INTERACTION_MALFORMED_KINDS), 0)}
    per_day = np.zeros(cfg.days, np.int64)
    for chunk, n in enumerate(chunk_sizes(cfg.events, cfg.chunk_rows)):
        rng = chunk_rng(cfg.seed, STREAM_INTERACTIONS, chunk)
        rows = (challenge_interactions(cfg, cal, rng, n) if world is None
                else realistic_interactions(cfg, world, cal, rng, n))
        rows, chunk_stats = finish_rows(cfg, rows, rng, INTERACTION_MALFORMED_KINDS, ["action_type"],
                                        cfg.duplicate_share)
        if cfg.bad_batch == "null_user":
            target = pick_rows(rng, len(rows), NULL_USER_SHARE)
            rows.replace("user_id", target, pa.array([""] * len(target)))
            chunk_stats["null_user_rows"] = int(len(target))
        per_day += np.bincount(rows.route, minlength=cfg.days)[: cfg.days]
        add_counts(stats, chunk_stats)
        sink.write(rows)
    stats["rows_per_date"] = {cal.iso(d): int(c) for d, c in enumerate(per_day) if c}
    return stats


def generate_metadata(cfg: Config, cal: Calendar, world: World | None, sink: Sink) -> dict:
    stats: dict = {"rows": 0, "malformed": dict.fromkeys(interaction_kinds(cfg, METADATA_MALFORMED_KINDS), 0)}
    if world is None:
        batches = [(chunk, n) for chunk, n in enumerate(chunk_sizes(cfg.metadata_rows, cfg.chunk_rows))]
    else:
        batches = [(chunk, np.arange(start, min(start + cfg.chunk_rows, cfg.users)))
                   for chunk, start in enumerate(range(0, cfg.users, cfg.chunk_rows))]
    for chunk, what in batches:
        rng = chunk_rng(cfg.seed, STREAM_METADATA, chunk)
        if world is None:
            rows, extra = challenge_metadata(cfg, cal, rng, what), {}
        else:
            rows, extra = realistic_metadata(cfg, world, cal, rng, what)
        if cfg.bad_batch == "broken_join":
            # ids beyond the event id space: valid format, never an event user
            rows.fields["user_id"] = prefixed_ids("u", cfg.id_space + 1 + rng.permutation(len(rows)) + chunk * 2 * cfg.chunk_rows)
        rows, chunk_stats = finish_rows(cfg, rows, rng, METADATA_MALFORMED_KINDS,
                                        ["device_type", "subscription_type"], 0.0)
        chunk_stats.pop("exact_duplicates")
        add_counts(stats, chunk_stats | extra)
        sink.write(rows)
    if world is None:
        stats["note"] = "user_ids drawn uniformly with replacement, so some repeat"
    return stats


def run(cfg: Config) -> dict:
    cal = Calendar(cfg.start_date, -max(JOIN_DAYS_BEFORE_START, JOIN_DAYS_BEFORE_START_REALISTIC), cfg.days)
    world = build_world(cfg) if cfg.mode == "realistic" else None
    cfg.out.mkdir(parents=True, exist_ok=True)
    staging = cfg.out / ".datagen-staging"
    shutil.rmtree(staging, ignore_errors=True)

    date_folder = (lambda day: f"date={cal.iso(day)}") if cfg.layout == "date-folders" else None
    country_folder = (lambda c: f"country={COUNTRIES[c]}") if cfg.metadata_layout == "country-folders" else None
    interactions = Sink(staging / "user_interactions", "user_interactions", INTERACTION_COLUMNS, cfg, date_folder)
    metadata = Sink(staging / "user_metadata", "user_metadata", METADATA_COLUMNS, cfg, country_folder,
                    "country" if country_folder else None)
    try:
        interaction_stats = generate_interactions(cfg, cal, world, interactions)
    finally:
        interaction_files = interactions.close()
    try:
        metadata_stats = generate_metadata(cfg, cal, world, metadata)
    finally:
        metadata_files = metadata.close()

    # publish both datasets only when both are complete
    for name in ("user_interactions", "user_metadata"):
        shutil.rmtree(cfg.out / name, ignore_errors=True)
        os.replace(staging / name, cfg.out / name)
    staging.rmdir()
    manifest = build_manifest(cfg, world, interaction_stats, metadata_stats, interaction_files, metadata_files)
    (cfg.out / "_manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def build_manifest(cfg: Config, world: World | None, interactions: dict, metadata: dict,
                   interaction_files: list[str], metadata_files: list[str]) -> dict:
    def expected_rejects(stats: dict) -> int:
        return sum(stats.get("malformed", {}).values())

    manifest = {
        "generator": "infra.datagen",
        "args": {k: (str(v) if isinstance(v, (Path, dt.date)) else v)
                 for k, v in dataclasses.asdict(cfg).items() if k != "out"},
        "line_ending": "CRLF" if cfg.line_ending == "\r\n" else "LF",
        "user_interactions": interactions | {"files": interaction_files,
                                             "expected_rejected": expected_rejects(interactions)},
        "user_metadata": metadata | {"files": metadata_files, "expected_rejected": expected_rejects(metadata)},
        "bad_batch": None if cfg.bad_batch is None else
        {"kind": cfg.bad_batch, "description": BAD_BATCH_KINDS[cfg.bad_batch]},
    }
    if world is not None:
        manifest["realistic"] = {
            "hot_users": world.user_ids[:cfg.hot_user_count].to_pylist(),
            "hot_user_expected_event_share": cfg.hot_user_share,
            "versions": [{"app_version": v, "release_day": float(r)}
                         for v, r in zip(world.versions, world.release_day)],
        }
        manifest["anomalies"] = [
            {"kind": "latency_spike", "date": world_date(cfg, world.spike_day),
             "app_version": world.versions[world.spike_version], "action_type": "page_view",
             "duration_factor": LATENCY_SPIKE_FACTOR},
            {"kind": "usage_burst", "date": world_date(cfg, world.burst_day), "session_factor": USAGE_BURST_FACTOR},
        ]
    return manifest


def world_date(cfg: Config, day: int) -> str:
    return (cfg.start_date + dt.timedelta(days=int(day))).isoformat()


# =============================================================================
# Command line
# =============================================================================
def parse_args(argv: list[str] | None = None) -> Config:
    bad_batch_help = "; ".join(f"{k}: {v}" for k, v in BAD_BATCH_KINDS.items()).replace("%", "%%")
    p = argparse.ArgumentParser(
        prog="python -m infra.datagen", description=__doc__,
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


if __name__ == "__main__":
    sys.exit(main())
