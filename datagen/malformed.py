"""Malformed rows, one kind per reject reason of docs/tables.md, exact duplicate
rows, and (with --malformed-lines, CSV only) line faults: lines that are no row
at all."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datagen.config import Config
from datagen.rows import Rows, choose, pick_rows, replace_rows

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


def interaction_kinds(cfg: Config, kinds: list[str]) -> list[str]:
    if cfg.file_format != "csv":
        return [k for k in kinds if k not in COLUMN_COUNT_KINDS]
    return kinds + LINE_FAULT_KINDS if cfg.malformed_lines else kinds


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


def with_line_faults(lines: pa.Array, faults: np.ndarray | None, ending: bytes) -> pa.Array:
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
    return replace_rows(lines.cast(pa.binary()), rows, pa.array(values, pa.binary()))
