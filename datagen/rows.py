"""A chunk of rows as landing text (Rows), and what every generator module makes
them with: one random stream per chunk, ids and dates as text (Calendar), draws
of values and of rows."""
from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from datagen.domains import SECONDS_PER_DAY

STREAM_INTERACTIONS, STREAM_METADATA, STREAM_WORLD = 1, 2, 3


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


def replace_rows(array: pa.Array, rows: np.ndarray, values: pa.Array) -> pa.Array:
    """``array`` with the entries at ``rows`` replaced by ``values``, in order."""
    mask = np.zeros(len(array), bool)
    mask[rows] = True
    return pc.replace_with_mask(array, pa.array(mask), values)


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
        self.fields[column] = replace_rows(self.fields[column], rows, values)
