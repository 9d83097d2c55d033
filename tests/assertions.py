"""Whole-DataFrame comparison: same columns in order, same rows (any order),
floats equal to 1e-9 relative."""
from __future__ import annotations

import datetime as dt
import math


def _utc_naive(v):
    """Iceberg timestamptz reads back tz-aware from PyIceberg and naive UTC from Spark."""
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return v


def _key(row):
    return tuple((v is None, str(v)) for v in row)


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, (float, int)) and a is not None and b is not None:
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def assert_rows(df, columns: list[str], expected: list[tuple]) -> None:
    assert df.columns == columns, f"columns differ: got {df.columns}, expected {columns}"
    actual = sorted((tuple(map(_utc_naive, r)) for r in df.collect()), key=_key)
    wanted = sorted((tuple(map(_utc_naive, r)) for r in expected), key=_key)
    assert len(actual) == len(wanted), f"{len(actual)} rows, expected {len(wanted)}:\n{actual}\nvs\n{wanted}"
    for got, want in zip(actual, wanted):
        assert len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want)), f"row {got} != expected {want}"
